"""A gs:// checkpoint reaches Google's Cloud Storage connector (installed by scripts/setup.sh).
No bucket is reachable from here, so the test shows the path up to Google's sign-in: the query
fails at start with the connector's own error, not with Hadoop's "No FileSystem for scheme"."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_gs_checkpoint_fails_at_start_with_the_connectors_error(spark) -> None:
    writer = (
        spark.readStream.format("rate")
        .load()
        .writeStream.format("noop")
        .option("checkpointLocation", "gs://payments-recon-no-such-bucket/checkpoint")
    )
    with pytest.raises(Exception) as info:
        q = writer.start()
        q.stop()
    message = str(info.value)
    assert "No FileSystem for scheme" not in message
    # without credentials: "ComputeEngineCredentials cannot find the metadata server";
    # with them: the bucket does not exist or is not ours
    assert any(w in message for w in ("Credentials", "metadata server", "404", "403")), message
