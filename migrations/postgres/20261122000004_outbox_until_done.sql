-- Outbox rows now stay until their job is done, so a job survives Redis
-- losing its data: relayed_at says when it was last handed to the queue,
-- and a job still here long after that is handed over again.
ALTER TABLE job_outbox ADD COLUMN relayed_at TIMESTAMPTZ;
