"""The agent team: model providers, tools, the planner and its sub-agents, trajectories."""
