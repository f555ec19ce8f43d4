"""Auditing as kube-apiserver's: an `audit.k8s.io/v1` policy decides what each request records, and
backends (a rotated JSON-lines log, a batching webhook) receive the events.

`policy` parses and matches policies, `event` builds the events, `backends` writes them, and `auditor`
puts them together from the `--audit-*` settings; the filter that runs them is
`kapi.endpoints.audit_filter`. Importing this package imports nothing heavy (httpx only when a webhook is
configured).
"""
