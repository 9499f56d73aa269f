-- Where each photo is used, so it is shown only to whom may see it
-- (turnout_store::StoredPhoto): on a ballot, on a standing nomination, in any version.
CREATE INDEX candidates_by_photo ON candidates (photo) WHERE photo IS NOT NULL;
CREATE INDEX nominations_by_photo ON nominations (photo) WHERE photo IS NOT NULL;
CREATE INDEX nomination_versions_by_photo ON nomination_versions (photo) WHERE photo IS NOT NULL;
