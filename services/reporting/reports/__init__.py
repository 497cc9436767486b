"""Weekly and monthly client reports: figures from the analytics API, charts, PDF, email.

`service.ReportService` is what the reporting app mounts: its blueprint
(`/api/reports...`), its scheduler (08:00 on Mondays and on the 1st in each
client's zone) and the consumer that keeps who wants which report. The
modules are its rooms: `periods` (pure calendar arithmetic), `figures` (the
analytics API), `charts` and `documents` (matplotlib, HTML, PDF), `mail`,
`files` (folder or S3), `store` (PostgreSQL), `builder`, `scheduler`,
`clients`, `api`, `openapi`.
"""
