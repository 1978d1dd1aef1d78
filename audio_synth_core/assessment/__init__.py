"""Run-level judgement: fairness, bootstrap statistics, the data contract, the gate."""
