"""What the services share: settings, clients, logging, metrics helpers and the statistics.

Services never import each other; they talk through Kafka topics and share only this package
and `schemas`.
"""
