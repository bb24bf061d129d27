"""Generate large, valid fleet files for benchmarks and scale tests."""

from __future__ import annotations


def generate_fleet(
    clusters: int, groups_per_cluster: int, services_per_cluster: int, *, nix_every: int = 4
) -> str:
    """A fleet of clusters × groups and clusters × services; every `nix_every`-th group uses
    nix userdata, services alternate target tracking and a step policy pair."""
    out = ["version: 1", "region: us-east-1", "flake: github:acme/infra", "clusters:"]
    for c in range(clusters):
        out += [
            f"  c{c}:",
            "    subnets: [subnet-0a1b2c3d, subnet-1b2c3d4e]",
            "    security_groups: [sg-0a1b2c3d]",
            "    groups:",
        ]
        for g in range(groups_per_cluster):
            nix = nix_every and g % nix_every == 0
            out += [
                f"      g{g}:",
                "        ami: ami-0123456789abcdef0",
                "        instance_types: [m6i.large, m5.large]"
                if g % 2
                else "        instance_types: [m6i.large]",
                "        capacity: {min: 1, max: 10}",
                f"        spot: {'true' if g % 3 == 0 else 'false'}",
                f"        userdata: {'nix' if nix else 'settings'}",
                "        ecs:",
                f'          attributes: {{tier: t{g}, shard: "{g % 7}"}}',
                "          tags: {team: payments}",
                "          reserved_memory_mib: 256",
                "          task_cleanup_wait: 1h",
                "        secrets:",
                f'          db-password: {{parameter: /c{c}/g{g}/db, mode: "0400"}}',
            ]
            if g % 5 == 0:
                out.append("        drain: {timeout: 10m}")
            if nix:
                out += [
                    "        nixos: |",
                    "          { lib, ... }: { services.openssh.enable = lib.mkForce false; }",
                ]
        out.append("    services:")
        for s in range(services_per_cluster):
            out += [
                f"      s{s}:",
                f"        group: g{s % groups_per_cluster}",
                f"        image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/s{s}:1.0",
                "        cpu: 256",
                "        memory: 512",
                "        port: 8080",
                f"        environment: {{NAME: s{s}, MODE: prod}}",
                f"        secrets: {{DB_PASSWORD: /c{c}/s{s}/db}}",
                "        scaling:",
                "          min: 1",
                "          max: 20",
            ]
            if s % 2:
                out.append("          target_tracking: {metric: cpu, target: 70}")
            else:
                out += [
                    "          step:",
                    "            - name: high",
                    '              alarm: {metric: CPUUtilization, period: 60, evaluation_periods: 3, threshold: 70, comparison: ">="}',
                    "              steps: [{lower: 0, upper: 15, change: 1}, {lower: 15, change: 3}]",
                    "            - name: low",
                    '              alarm: {metric: CPUUtilization, period: 300, evaluation_periods: 3, threshold: 25, comparison: "<="}',
                    "              steps: [{upper: 0, change: -1}]",
                ]
    return "\n".join(out) + "\n"
