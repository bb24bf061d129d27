"""E196: two clusters of one fleet sending their notifications to one SNS topic. A topic has
one access policy (its `Policy` attribute, SetTopicAttributes), and each cluster's stack sets
it to a document that allows that cluster's own two EventBridge rules only: the cluster
deployed last would silently take the topic from the other (nixecs.fleet.notifications)."""

from __future__ import annotations

import pytest

from capacity_fixtures import line_of
from nixecs.diagnostics import FIXES, InvalidInput
from nixecs.fleet.checks import check_text

TOPIC = "arn:aws:sns:us-east-1:123456789012:ops"


def cluster(name: str, topic: str | None) -> str:
    notifications = f"    notifications: {{sns_topic: '{topic}'}}\n" if topic else ""
    return (
        f"  {name}:\n"
        "    subnets: [subnet-0a1b2c3d]\n"
        "    security_groups: [sg-0a1b2c3d]\n" + notifications + "    groups:\n"
        "      web: {ami: ami-0123456789abcdef0, instance_types: [m6i.large], capacity: {min: 1, max: 2}}\n"
    )


def fleet(*clusters: str) -> str:
    return "version: 1\nregion: us-east-1\nclusters:\n" + "".join(clusters)


def test_two_clusters_on_one_topic_is_e196_at_the_second() -> None:
    text = fleet(cluster("prod", TOPIC), cluster("staging", None), cluster("batch", TOPIC))
    with pytest.raises(InvalidInput) as caught:
        check_text(text, "fleet.yml", nix=False)
    [error] = caught.value.report.errors
    assert error.code == "E196" and FIXES["E196"]
    # located at the second cluster's sns_topic, naming the first
    assert (
        error.location.line
        == [n for n, line in enumerate(text.splitlines(), 1) if "notifications" in line][1]
    )
    assert "'prod'" in error.message
    assert line_of(text, "batch:") < error.location.line


@pytest.mark.parametrize(
    "clusters",
    [
        (cluster("prod", TOPIC), cluster("batch", TOPIC.replace(":ops", ":ops-batch"))),
        (cluster("prod", TOPIC), cluster("batch", None)),
        # the same topic name in another account is another topic
        (cluster("prod", TOPIC), cluster("batch", TOPIC.replace("123456789012", "210987654321"))),
    ],
)
def test_a_topic_of_each_clusters_own_is_accepted(clusters: tuple[str, str]) -> None:
    check_text(fleet(*clusters), "fleet.yml", nix=False)
