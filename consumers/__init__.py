"""The consumer side of the event streams (DESIGN §7): read the relay's topics, act exactly once.

`base.TrackedConsumer` keeps its Kafka offsets in PostgreSQL in the same transaction as its effects;
on it run the scale-out projection workers, the notice gateway and the 数字城管 export.
"""
