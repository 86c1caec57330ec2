"""The playbook's flows-and-segments language (docs/flows.md).

Pure modules, no Faust or Kafka: the YAML 1.2 loader, the models of segments
and flows, the parser that turns playbook data into them with one-line errors,
and the evaluator of conditions over a customer record and an event.
"""
