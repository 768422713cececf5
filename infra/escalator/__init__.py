"""The escalator process (`dudao escalate`): takes due ladder steps exactly once; its schedule cache, views and ranking consequences."""
