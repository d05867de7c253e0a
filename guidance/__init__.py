"""Guidance: the line above the results — resolve it yourself (with the steps that
resolved similar cases) or escalate (with the reason and to whom). Escalation rules are
editable data, matched on words and on meaning."""
