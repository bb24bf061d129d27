"""Located errors and warnings, their codes, their one-line format, and the exit codes.

A diagnostic prints as `path:line:col: error[CODE]: message` (DESIGN §6). Codes:

- E1xx fleet schema (syntax, unknown/duplicate keys, types, names, durations, references, size)
- E12x offline AWS facts (E121/E122 alarm dimensions and metric names, E123-E129 instance
  types, task fit, image references, region, drain timeout, architectures)
- E140-E149 services' task definitions: containers, network mode, task role (W140: a task role
  granting a scopable action on `*`)
- E15x load balancing, placement and deployment (nixecs.fleet.loadbalancing)
- E16x `overrides:` (E160 unknown logical id, E161 nothing to delete, E162 path through a
  non-object, E163 path syntax, E164 cfn-lint error in the overridden stack)
- E182-E183 a cluster's tasks and their schedules (nixecs.fleet.cluster_tasks); E188 more
  than ECS's 10 custom attributes on a group's container instances (nixecs.fleet.aws_rules)
- E178 daemon services (nixecs.fleet.daemon); E179-E180 Linux parameters, privileged
  (nixecs.fleet.linux)
- E175-E177 secrets by ARN and from Secrets Manager (nixecs.fleet.secret_refs; E177 preflight)
- E170-E174 data volumes and mounts (nixecs.fleet.volumes; W170 a read-only root filesystem
  with nothing writable, W173 a shared volume nothing autoprovisions, W174 one shared volume
  declared differently)
- E168 two clusters owning one load balancer ingress rule (same instance and load balancer
  security groups)
- E184-E187 Network Load Balancers (nixecs.fleet.loadbalancing: E184 a key of the other load
  balancer type, E185 a listener port taken twice, E186 a listener protocol against what it
  forwards to, E187 a health check the type does not allow)
- H1xx hazards of a stack update, shown by `deploy --plan` (cloudformation/transition.py):
  H101 a group deleted, H102 listener rule priorities colliding (both made safe by `deploy`),
  H103 a target group replaced under a listener rule, H104 a custom-named resource replaced,
  H105 the load balancer replaced, H106 an ingress rule the security group already has,
  H107 a priority another owner's rule holds on an existing listener, H108 a Network Load
  Balancer's security groups added after creation or all removed, H109 a shared Docker
  volume declared another way than deployed (refused unless `--accept-hazard CODE`)
- E5xx your own hosts and flake (E501 unknown host, E502 its architecture, E503 ami.host
  against host, E504 no published AMI for the host, E505 `nixos:` does not evaluate, E506 `exec:`/`gpu:` the host
  does not provide; W501 not checkable; W502 pre-Turing GPUs with the open NVIDIA modules)
- E19x capacity (E190 a capacity provider strategy AWS refuses, E191 a placement constraint
  a group of the strategy cannot satisfy, W191 a spread on an attribute a group of the
  strategy does not set, E192 secrets across groups of different KMS keys;
  nixecs.fleet.strategy; E193 group capacity settings that contradict, nixecs.fleet.capacity;
  E194 a scheduled min above its max, E195 two target tracking policies on one metric, W205 a
  strategy base above the service's maximum: `scaling check`, nixecs.scaling.capacity;
  E196 two clusters' notifications on one SNS topic, nixecs.fleet.notifications)
- E2xx AWS scaling rules (E201 overlap, E202 gap, E203 null bounds, E204 > 20 steps, E205 min > max)
- E3xx scaling replay input (E301 a load trace CSV that does not parse)
- E4xx the final (overridden) template (nixecs.template_checks: E401 the `*` action, E402 an
  administrator managed policy, E403 IMDSv1, E404 an unencrypted volume, E405 ingress from
  anywhere, E406 userdata over 16 KB, E407 a role's inline policies over 10,240 characters;
  W401 hop limit above 1, W402 a resource left behind)
- W1xx fleet lints (W101 metadata hop limit above 1: containers reach the instance role)
- W2xx lints (W201 unreachable step, W202 scales out but never in, W203 step scale-in beside
  target tracking, W204 a desired count that cannot be honoured)
"""

from __future__ import annotations

import sys
from typing import TextIO

from .records import dataclass, field

EXIT_OK = 0
EXIT_FAILURE = 1  # operational: AWS, network, IMDS
EXIT_INVALID = 2  # invalid input or usage

CODES: dict[str, str] = {
    "E100": "not a readable YAML document",
    "E101": "unknown key",
    "E102": "duplicate key",
    "E103": "wrong type",
    "E104": "missing required key",
    "E105": "bad name",
    "E106": "bad duration",
    "E107": "value not allowed",
    "E108": "reference to something that does not exist",
    "E109": "capacity: min > max or desired outside [min, max]",
    "E110": "value cannot be represented (NUL or unencodable text)",
    "E111": "userdata too large for EC2 (16 KB after gzip)",
    "E112": "option not allowed with this setting",
    "E113": "nixos module text does not parse as Nix",
    "E114": "two fleet subjects would share an AWS name (or a step policy a name nixecs generates: a deployment alarm, a target tracking policy)",
    "E115": "a cluster's stack is over CloudFormation's quotas",
    "E116": "ECS refuses this attribute name or tag key (or this many tags)",
    "E117": "ECS refuses this attribute or tag value",
    "E118": "not a variable the ECS agent reads",
    "E119": "agent variable already set by a typed key or the host",
    "E120": "number out of range (beyond a 64-bit integer or a double), or .nan/.inf in overrides",
    "E121": "alarm dimensions missing, or not a set the metric is published with",
    "E122": "no such metric in AWS/ECS or ECS/ContainerInsights",
    "E123": "no such EC2 instance type",
    "E124": "instance type not offered in the fleet's region",
    "E125": "a task that fits none of its group's instance types",
    "E126": "image reference does not parse (Docker reference grammar)",
    "E127": "not an AWS region with ECS",
    "E128": "drain timeout not above zero",
    "E129": "one group mixing arm64 and x86_64 instance types",
    "E130": "a stack over CloudFormation's 51,200-byte inline template limit, and no template_bucket",
    "E131": "preflight: a service-linked role ECS or Application Auto Scaling needs is missing",
    "E132": "preflight: an SSM parameter is missing or not a SecureString",
    "E133": "preflight: a subnet or security group is missing, or they are not in one VPC",
    "E134": "preflight: an AMI is missing in the region",
    "E135": "preflight: an AMI's architecture does not match the group's instance types",
    "E136": "preflight: an ECR image's tag is not in its repository",
    "E137": "preflight: an ECR image's repository does not exist",
    "E138": "preflight: an ECR image's digest is not in its repository",
    "E140": "no essential container in a service's task",
    "E141": "container memory: memory_reservation not below memory, or no memory at all",
    "E142": "containers reserve more cpu or memory than the task's own cpu/memory",
    "E143": "health check command not CMD/CMD-SHELL form, or empty",
    "E144": "port mappings: a container port twice, a host port twice, or host mode with another host port",
    "E145": "depends_on: a cycle, a container on itself, COMPLETE/SUCCESS on an essential one, HEALTHY without a health check",
    "E146": "network_mode awsvpc: needs the ECS CNI plugins the image does not have",
    "E147": "task role: not an IAM action, the `*` action, or a bad resource or condition",
    "E148": "awsfirelens logging without exactly one FireLens log router in the task",
    "E149": "ulimit soft limit above its hard limit",
    "E150": "routing in a cluster without a load_balancer",
    "E151": "listener rule priority used twice on one listener",
    "E152": "routing to a container port the service does not map",
    "E153": "listener rule without a condition (no path_patterns or host_headers)",
    "E154": "health check timeout not below its interval",
    "E155": "too many listener rule condition values (3 per condition, 5 per rule)",
    "E156": "target tracking on requests without routing",
    "E157": "enable_execute_command on a group whose host does not provide ECS Exec (no `exec: true`)",
    "E158": "deployment maximum_percent not above minimum_healthy_percent",
    "E159": "load balancer without a listener, a one-sided redirect, or fewer than two subnets",
    "E160": "overrides: no resource with this logical id in the cluster's stack",
    "E161": "overrides: a deletion (null) of something that does not exist",
    "E162": "overrides: the path walks through a value that is not an object",
    "E163": "overrides: not a logical id, or not a path under Properties/DependsOn/...",
    "E164": "overrides: cfn-lint finds an error in the overridden template (validate)",
    "E165": "an agent variable whose feature this host does not provide (GPU, awsvpc, ...)",
    "E166": "a `gpu: true` group with an instance type that has no NVIDIA GPU",
    "E167": "a container asking for GPUs on a group without `gpu: true`, or for more than its instances have",
    "E170": "a mount naming no volume of the service, or volumes_from naming no other container of it",
    "E171": "two mounts on one path in a container (as Docker cleans it), a mount on /, or volumes_from naming a container twice",
    "E172": "a host path, mount path or EFS root directory that is not absolute",
    "E173": "EFS transit encryption, IAM authorisation or an access point: they need the ECS volume plugin, which the host lacks",
    "E174": "a Docker volume with autoprovision and `scope: task` (autoprovision is for shared volumes)",
    "E175": "a secret that is neither an SSM parameter (name or ARN) nor a Secrets Manager secret (ARN or {secretsmanager: NAME})",
    "E176": "a Secrets Manager ARN without its 6-character suffix, or a secret name that ends like one",
    "E177": "preflight: a Secrets Manager secret does not exist",
    "E178": "a daemon service with desired, scaling, a placement strategy or maximum_percent other than 100",
    "E179": "linux.capabilities: a capability listed twice, or both added and dropped",
    "E180": "a privileged container on a group whose hosts refuse privileged containers",
    "E181": "environment_files: not an S3 object ARN of a .env file, listed twice, or more than 10",
    "E182": "a cluster task with the name of one of its services",
    "E183": "a schedule expression outside EventBridge Scheduler's grammar (at, rate, cron)",
    "E188": "more than 10 custom attributes on a group's container instances (nixecs.group included)",
    "E168": "two clusters would own the same load balancer ingress rule",
    "E184": "a key of the other load balancer type (an ALB's with type: network, or an NLB's with an ALB)",
    "E185": "two routing entries taking one Network Load Balancer listener port",
    "E186": "a Network Load Balancer listener's protocol and what it forwards to disagree (TLS without a certificate, UDP without one fixed host port for udp and tcp)",
    "E187": "a health check the load balancer's type does not allow (TCP on an ALB, HTTP codes out of range, a path on a TCP check)",
    "E169": "environments: the file declares environments and none was chosen (--env), or --env names none of them",
    "H101": "deploy: an Auto Scaling group deleted while its instances may be protected from scale-in",
    "H102": "deploy: listener rules taking priorities other rules hold during the update (PriorityInUse)",
    "H103": "deploy: a target group replaced while a listener rule forwards to it (503s)",
    "H104": "deploy: a custom-named resource replaced (CloudFormation cannot)",
    "H105": "deploy: the load balancer replaced (new DNS name, listeners recreated)",
    "H106": "deploy: an ingress rule its security group already has (InvalidPermission.Duplicate)",
    "H107": "deploy: a listener rule priority held by a rule of another owner on an existing listener",
    "H108": "deploy: a Network Load Balancer's security groups added to one created without, or all removed",
    "H109": "deploy: a shared Docker volume given another driver, options or labels than deployed (instances that have it keep it)",
    "E401": "the final template: a role allows the `*` action (or Allow with NotAction)",
    "E402": "the final template: a role attaches an administrator AWS managed policy",
    "E403": "the final template: a launch template leaves IMDSv1 on (HttpTokens not required)",
    "E404": "the final template: an EBS volume that is not encrypted",
    "E405": "the final template: ingress from 0.0.0.0/0 or ::/0 to the instances' security group",
    "E406": "the final template: a launch template's UserData over EC2's 16 KB",
    "E407": "the final template: a role's inline policies over IAM's 10,240 characters",
    "E501": "a group's host is not a host (nixosConfigurations) of the fleet's flake",
    "E502": "a group's host is built for another architecture than the group's instance types",
    "E503": "`ami: {host: …}` names another host than the group's `host:`",
    "E504": "no available AMI published for the group's host (and revision) in the region, or two equally new",
    "E505": "a group's `nixos:` text does not evaluate with its host",
    "E506": "a group says `exec: true` or `gpu: true` and its host does not set the option that provides it",
    "E190": "a capacity provider strategy AWS refuses (two bases, all weights 0, a group twice, over 20 groups)",
    "E191": "a placement constraint no instance of a group of the service's strategy satisfies",
    "E192": "a service with secrets across groups whose kms_key differs",
    "E193": "capacity settings that contradict (minimum_step above maximum_step, an on-demand split on an on-demand group)",
    "E194": "a scheduled action whose min is above its max (or, setting one bound only, beyond every bound the target can then have)",
    "E195": "two target tracking policies on the same metric",
    "E196": "two clusters sending notifications to one SNS topic (each stack replaces the topic's policy)",
    "E201": "step adjustments overlap",
    "E202": "gap between step adjustments",
    "E203": "null bounds: only the first lower and the last upper bound may be open",
    "E204": "more than 20 step adjustments",
    "E205": "scaling min > max",
    "E206": "ExactCapacity with a negative capacity",
    "E301": "a load trace (CSV) that does not parse: header, timestamp, spacing or value",
    "W101": "metadata.hop_limit above 1: containers can reach the instance metadata service",
    "W102": "a cpu or memory target tracking target below 1: a fraction where AWS reads a percentage",
    "W140": "a task role grants an action that has a resource type on `*`",
    "W170": "a read-only root filesystem with no writable mount: the container can write nowhere",
    "W171": "an image without a tag or digest: it resolves to :latest and drifts",
    "W172": "a FireLens output needs an action the task role does not allow",
    "W173": "a shared Docker volume that nothing autoprovisions: the task starts only where it exists",
    "W174": "one shared Docker volume name declared differently by tasks that share instances",
    "W401": "the final template: an override sets the metadata hop limit above 1",
    "W402": "the final template: a DeletionPolicy or UpdateReplacePolicy that leaves a resource behind",
    "W501": "the fleet's hosts (or `nixos:` texts) could not be checked against its flake",
    "W502": "a `gpu: true` group's instance type has GPUs older than Turing (p3, g3, p2, g2) and its host uses NVIDIA's open kernel modules, which do not support them",
    "W201": "a step its alarm can never reach",
    "W202": "a service that can scale out but never in",
    "W203": "a step scale-in beside target tracking's scale-in",
    "W204": "a desired count that cannot be honoured (scaled service, Auto Scaling group)",
    "W205": "a strategy base above the most tasks the service runs: the weights never apply",
    "W191": "a placement spread on an attribute a group of the service's strategy does not set",
    "W193": "on_demand_allocation on a group that launches no on-demand instances by it (one instance type, or a spot group without an on-demand split)",
}


# What to do about each code: docs/fleet.md shows CODES (the cause) and FIXES side by side, and
# tests/test_fleet_schema.py fails for a code without a fix.
FIXES: dict[str, str] = {
    "E100": "fix the YAML syntax at the position shown, or the file's path",
    "E101": "remove the key or correct its spelling (the message lists the allowed keys)",
    "E102": "keep one of the two keys",
    "E103": "write a value of the type the message names",
    "E104": "add the key",
    "E105": "rename it: letters, digits, _ and - as the message says",
    "E106": "write a duration such as 30s, 15m or 1h",
    "E107": "use one of the values or the range the message gives",
    "E108": "name an existing group, container or service, or declare it",
    "E109": "make min <= desired <= max",
    "E110": "remove NUL characters and unencodable text",
    "E111": "shorten `nixos:` and the secrets, or move settings into the host configuration",
    "E112": "remove the option, or change the setting it depends on",
    "E113": "fix the Nix syntax at the line and column given (of the `nixos:` text)",
    "E114": "rename one of the two subjects (a step policy, rather than the generated name: deployment-5xx[-N], deployment-unhealthy[-N] and target-tracking[-N] are taken)",
    "E115": "split the cluster into two clusters",
    "E116": "use a name ECS accepts (1-128 allowed characters, no aws: prefix, at most 50 tags)",
    "E117": "use a value ECS accepts (the message gives its length and characters)",
    "E118": "remove it, or spell the agent variable as the agent reads it",
    "E119": "set it with the typed key or host option the message names",
    "E120": "use a smaller, finite number",
    "E121": "give the dimensions the metric is published with (see docs/aws.md)",
    "E122": "use a metric name the namespace publishes",
    "E123": "use an existing instance type (aws ec2 describe-instance-types)",
    "E124": "pick an instance type offered in the region",
    "E125": "lower the task's cpu/memory or add a larger instance type",
    "E126": "write a valid image reference (name[:tag][@sha256:digest])",
    "E127": "use a region where ECS is available",
    "E128": "set drain.timeout above zero",
    "E129": "put arm64 and x86_64 instance types in separate groups",
    "E130": "set template_bucket (an S3 bucket in the region) or split the cluster",
    "E131": "create the service-linked role (nixecs validate --aws --create-service-linked-roles, or nixecs deploy --create-service-linked-roles)",
    "E132": "create the parameter as a SecureString (nixecs secret put)",
    "E133": "use existing subnets and security groups of one VPC",
    "E134": "copy or build the AMI in the fleet's region",
    "E135": "use an AMI built for the instance types' architecture",
    "E136": "push the tag (nixecs image push) or correct it",
    "E137": "create the repository or correct its name",
    "E138": "push the image or pin a digest the repository has",
    "E140": "mark the main container `essential: true`",
    "E141": "set memory (or memory_reservation below memory) on the container or the task",
    "E142": "raise the task's cpu/memory or lower the containers'",
    "E143": "write a command string, or a list starting with CMD or CMD-SHELL",
    "E144": "map each container and host port once; in host mode host_port equals container_port",
    "E145": "break the cycle, mark the dependency non-essential, or add its health check",
    "E146": "use network_mode bridge or host",
    "E147": "name IAM actions (service:Action) and resources (ARNs), never the `*` action",
    "E148": "add exactly one container with `firelens: {type: fluentbit}`",
    "E149": "make the soft limit at most the hard limit",
    "E150": "add a load_balancer to the cluster, or remove routing",
    "E151": "give each listener rule its own priority",
    "E152": "route to a port the container maps",
    "E153": "add path_patterns or host_headers",
    "E154": "make the health check timeout shorter than its interval",
    "E155": "use at most 3 values per condition and 5 per rule",
    "E156": "add routing, or track cpu or memory",
    "E157": "set nixecs.ecs.exec.enable on the host and `exec: true` on the group, or remove it",
    "E158": "make maximum_percent greater than minimum_healthy_percent",
    "E159": "add http or https, pair redirect with both, give two subnets or more",
    "E160": "use a logical id of the cluster's stack (see `nixecs render`)",
    "E161": "remove the deletion, or delete something the resource has",
    "E162": "stop the path at the value that is not an object",
    "E163": "write LogicalId: {Properties.Path.To.Key: value}",
    "E164": "fix the override so that cfn-lint accepts the template",
    "E165": "remove it; the message names what it needs and the supported way",
    "E166": "use GPU instance types (g4dn, g5, g6, p4d, ...) in the group, or drop `gpu: true`",
    "E167": "run the service on a `gpu: true` group whose instance types have that many GPUs",
    "E170": "declare the volume under the service's `volumes:`, or name another container of the task",
    "E171": "mount each path once (one volume per path), never on / itself, and name each container once",
    "E172": "write an absolute path, starting with /",
    "E173": "use plain EFS (no transit_encryption, iam or access_point); restrict access with the file system's security group",
    "E174": "set `scope: shared`, or remove autoprovision",
    "E175": "write /NAME or arn:aws:ssm:…:parameter/NAME, or a secret's full ARN, or {secretsmanager: NAME, json_key: KEY}",
    "E176": "write the secret's full ARN (…:secret:NAME-AbCdEf, from `aws secretsmanager describe-secret`)",
    "E177": "create the secret in the fleet's region, or correct its name or ARN",
    "E178": "remove the key: a daemon runs one task on every instance of its group",
    "E179": "list each capability once, in add or in drop",
    "E180": "set the group's `ecs.privileged: true` (it allows every task there), or remove `privileged`",
    "E181": "write arn:aws:s3:::BUCKET/KEY.env, each file once, at most 10",
    "E182": "rename the task or the service",
    "E183": "write at(2027-01-01T00:00:00), rate(5 minutes) or cron(0 3 * * ? *) (six fields, one of the days ?)",
    "E188": "keep a group's ecs.attributes to 9: nixecs adds nixecs.group, and ECS allows 10 custom attributes a container instance",
    "E168": "give the clusters different instance security groups (their first security_groups entry) or load balancer security groups",
    "E184": "remove the key, or change the load balancer's type: an NLB entry has `listener: {port, protocol}`, an ALB entry a priority and path_patterns/host_headers; http_5xx and request-count scaling are an ALB's",
    "E185": "give one of the entries another listener port",
    "E186": "give a TLS listener certificate_arn (and ssl_policy) and no other listener; for UDP/TCP_UDP map the container port over udp and tcp to the same fixed host_port",
    "E187": "an ALB checks over HTTP/HTTPS with codes 200-499; an NLB over TCP (no path or matcher), HTTP or HTTPS with codes 200-599",
    "E169": "run `nixecs --env NAME ...` with one of the environments the message lists (`nixecs validate` without it checks them all); on a file without environments, drop --env (or unset NIXECS_ENV)",
    "H101": "nothing: deploy lifts scale-in protection, scales the group to 0 and waits first, as destroy does",
    "H102": "nothing: deploy first moves the rules in the way to free priorities in an update of its own",
    "H103": "add a copy of the service (new name, new port, the same conditions, a larger priority), deploy, wait until its targets are healthy (nixecs status), then remove the old service and deploy",
    "H104": "rename the resource's fleet subject (a new name is created before the old is deleted), or undo the change",
    "H105": "undo the change; or create a second cluster with the new load balancer, move DNS to it, then remove the old one",
    "H106": "give this cluster its own instance or load balancer security group (the first entry of each), or remove the other rule if it is stale",
    "H107": "give the service's routing another priority (`aws elbv2 describe-rules --listener-arn ARN` lists those in use)",
    "H109": "deploy with `--accept-hazard H109` and then `nixecs roll` the group (new instances make the volume anew), or give the volume a new name",
    "H108": "keep the load balancer's security groups as created; or change its scheme or type (a replacement, H105) or create a second cluster with the new load balancer and move DNS to it",
    "E501": "name one of the hosts the message lists, or add the host to the flake (lib.mkHosts)",
    "E502": 'build the host for the instance types\' system (system = "aarch64-linux" for Graviton), or change the instance types',
    "E503": "write the same host in both, or drop the group's `host:`",
    "E504": "publish the host's image into the region (`nixecs ami publish --host HOST --fleet FLEET`), or deregister one of two equally new AMIs",
    "E505": "fix the `nixos:` text at the position shown (the message is Nix's evaluation error)",
    "E506": "set nixecs.ecs.exec.enable / nixecs.ecs.gpu.enable in the host's configuration, or drop the group's `exec: true` / `gpu: true`",
    "E190": "give one group the base, at least one a weight above 0, and name each group once",
    "E191": "change the memberOf expression, or drop that group from the service's `group:`",
    "E192": "give the groups one kms_key (the cluster's `kms_key:`), or run the service on one of them",
    "E193": "lower minimum_step to maximum_step at most; split on-demand/spot only on a `spot: true` group",
    "E194": "make the action's min at most its max; an action setting only min (max) also sets a max (min) that holds it, or raise scaling max (lower scaling min)",
    "E195": "track each metric once: merge the two policies, or track another metric",
    "E196": "give each cluster's notifications a topic of its own (subscribe the same people to both)",
    "E201": "make the steps' bounds not overlap",
    "E202": "make each step's lower bound the previous step's upper bound",
    "E401": "name the actions the role needs; never `*` or NotAction in an Allow",
    "E402": "attach a policy with the actions the role needs instead",
    "E403": "remove the override of MetadataOptions.HttpTokens (nixecs writes required)",
    "E404": "remove the override of Encrypted (nixecs writes true), or set it to true",
    "E405": "admit the load balancer's security group or a narrower CIDR, not the internet",
    "E406": "shorten the overridden UserData, or let nixecs render it (gzip)",
    "E407": "split the group (fewer secrets or image repositories each), or shorten names",
    "E203": "leave only the first lower and the last upper bound open",
    "E204": "use at most 20 steps",
    "E205": "make scaling.min at most scaling.max",
    "E206": "use a capacity of zero or more with ExactCapacity",
    "E301": "write a CSV with a header, ISO timestamps at a fixed spacing and numbers",
    "W101": "set metadata.hop_limit: 1 unless containers must reach IMDS",
    "W401": "remove the override of HttpPutResponseHopLimit (or set it to 1)",
    "W402": "remove the override, or keep it and delete the resource by hand after destroy",
    "W102": "write the percentage: `target: 60` for 60 %",
    "W140": "name the resources instead of `*`",
    "W170": "mount a volume where the container writes (a `docker: {}` volume is removed with the task), or set read_only_root_filesystem false",
    "W171": "give the image a tag (image:1.2.3) or a digest (image@sha256:…)",
    "W172": "add a task_role statement allowing the action the message names (on the output's resource)",
    "W173": "set `autoprovision: true` (or create the volume on the host, e.g. a systemd unit running `docker volume create`)",
    "W174": "give the volumes different names, or declare them alike (driver, driver_opts, labels) everywhere",
    "W501": "make `flake:` a local path and install Nix with flakes (or use lib.mkHosts, whose nixecsHosts output is read), or ignore",
    "W502": "set `hardware.nvidia.open = false;` on the host (the proprietary modules; Kepler, p2 and g2, also needs the 470 legacy driver branch, the last that supports it, as `hardware.nvidia.package`), or use Turing or later instance types (g4dn, g5, g6, p4d, p5)",
    "W201": "change the step's bounds or the alarm's threshold so it can be reached",
    "W202": "add a scale-in policy (or target tracking)",
    "W203": "drop the step scale-in, or disable target tracking's scale-in",
    "W204": "remove desired, or set scaling.min / capacity.min to it",
    "W193": "remove on_demand_allocation, or give the group several instance types (an on-demand group) or an on_demand_base / on_demand_percent (a spot group)",
    "W191": "set the attribute on every group of the strategy (ecs.attributes), or spread on another one (e.g. attribute:ecs.availability-zone)",
    "W205": "lower the base to the service's maximum task count or less, or raise the maximum",
}


@dataclass(frozen=True, order=True)
class Location:
    path: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    location: Location

    @property
    def is_error(self) -> bool:
        return self.code.startswith("E")

    @property
    def severity(self) -> str:
        return "error" if self.is_error else "warning"

    def format(self) -> str:
        return f"{self.location}: {self.severity}[{self.code}]: {self.message}"

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.location.path,
            "line": self.location.line,
            "column": self.location.column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }


@dataclass
class Report:
    """Diagnostics collected from one run, in source order when printed."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, code: str, message: str, location: Location) -> None:
        self.items.append(Diagnostic(code, message, location))

    def extend(self, items: list[Diagnostic]) -> None:
        self.items.extend(items)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if not d.is_error]

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        unique = {(d.location, d.code, d.message): d for d in self.items}
        return [unique[k] for k in sorted(unique)]

    def print(self, stream: TextIO | None = None) -> None:
        out = stream if stream is not None else sys.stderr
        for diagnostic in self.sorted():
            print(diagnostic.format(), file=out)


class InvalidInput(Exception):
    """Raised when input cannot be used; carries every diagnostic found."""

    def __init__(self, report: Report) -> None:
        self.report = report
        first = report.errors[0].format() if report.errors else "invalid input"
        super().__init__(first)


class OperationalFailure(Exception):
    """AWS, network or IMDS trouble: exit code 1, one clear line, no traceback."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived while a command held something to clean up (aws/image.py
    `signals`): raised like KeyboardInterrupt, so every `finally` runs; the CLI exits with
    128 + the signal's number, as a shell reports a process the signal ended."""

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(name)
        self.signum = signum
        self.name = name


class DeadlineReached(BaseException):
    """An operator command's whole deadline passed (aws/watchdog.py). A BaseException: no
    `except Exception` on the way (in botocore, urllib3 or our own code) may swallow it; the
    CLI turns it into exit 1 and this one line."""
