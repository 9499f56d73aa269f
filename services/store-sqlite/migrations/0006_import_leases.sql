-- Who runs a roll import, and until when (see ImportLease): a restarted or second
-- process takes over only an import whose lease has passed.
ALTER TABLE roll_imports ADD COLUMN owner TEXT;
ALTER TABLE roll_imports ADD COLUMN lease_until INTEGER;
