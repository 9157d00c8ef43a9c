"""Our fast key -> partition function is exactly Kafka's default partitioner.

Oracles: aiokafka's and kafka-python's own murmur2 partitioners (both ports of the Java
client), and values of the Java client itself, so every producer of the raw topic agrees.
"""

from __future__ import annotations

import uuid

from aiokafka.partitioner import DefaultPartitioner as AiokafkaPartitioner
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from services.common.partitioner import murmur2, partition_for, partitions_for

keys = st.binary(max_size=80)
uuid_keys = st.uuids().map(lambda u: str(u).encode())
partition_counts = st.integers(min_value=1, max_value=64)


def test_murmur2_matches_the_java_client():
    # Values from org.apache.kafka.common.utils.UtilsTest#testMurmur2 (as signed 32-bit ints).
    cases = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
             b"a-little-bit-longer-string": -1486304829,
             b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, b"abc": 479470107}
    for key, signed in cases.items():
        assert murmur2(key) == signed & 0xFFFFFFFF, key


@given(keys, partition_counts)
def test_partition_for_is_aiokafkas_default_partitioner(key, n):
    assert partition_for(key, n) == AiokafkaPartitioner()(key, list(range(n)), list(range(n)))


@given(keys, partition_counts)
def test_partition_for_is_kafka_pythons_default_partitioner(key, n):
    assert partition_for(key, n) == (kafka_python_murmur2(key) & 0x7FFFFFFF) % n


@given(st.lists(st.one_of(keys, uuid_keys), max_size=60), partition_counts)
def test_partitions_for_a_batch_equals_one_key_at_a_time(batch, n):
    assert partitions_for(batch, n) == [partition_for(k, n) for k in batch]


def test_a_large_batch_of_uuid_keys_is_hashed_as_kafka_does():
    batch = [str(uuid.UUID(int=i * 7919 + 1)).encode() for i in range(1000)]
    assert partitions_for(batch, 4) == [AiokafkaPartitioner()(k, [0, 1, 2, 3], [0, 1, 2, 3]) for k in batch]
