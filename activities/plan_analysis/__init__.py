"""The risk-aware policy-plan analysis: nine stages, the risk registry, alerts."""
