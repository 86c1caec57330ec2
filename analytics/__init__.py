"""Offline analytics over what the engine reads and writes: the campaign report (lift,
KPIs and their statistics), model fitting (CLV, RFM breakpoints) and the simulated shop.
Nothing here runs per event; the per-event rules are in ``lifecycle``."""
