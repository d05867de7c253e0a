"""Access: who is calling (API keys, roles, per-customer assignments and handover
grants), what they may see (the policy applied inside retrieval and to every
response), masking of personal data, and the append-only audit log."""
