"""What tests/ and bench/ share to drive the engine from outside: a worker as a child
process on a real broker and the helpers around it (engine), hostile inbound messages
(hostile), the CDNOW data set (datasets). Not part of the installed product."""
