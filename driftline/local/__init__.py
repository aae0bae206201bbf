"""Local infrastructure as plain processes: an Apache Kafka broker and a PostgreSQL server.

Development machines and CI have no container engine, so the services the integration tests
and the demo need run as ordinary processes bound to 127.0.0.1, installed by the project
itself: Kafka's jars from Maven Central (:mod:`driftline.local.kafka`), PostgreSQL from
Debian's packages (:mod:`driftline.local.postgres`). ``driftline local ...`` drives both.
"""
