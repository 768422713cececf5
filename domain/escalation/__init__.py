"""Escalation (逐级督办): the ladder as policy, work items, taking a step, and notices (交办单, 提醒, 催办, 督办)."""
