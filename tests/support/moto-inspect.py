#!/usr/bin/env python3
"""Answer questions about a moto_server's EC2 state as JSON, for tests that bake against moto.

Usage (every subcommand prints one JSON document on stdout; errors go to stderr, exit 1):
  moto-inspect.py image ENDPOINT REGION AMI_ID
      {"image_id", "exists", "state", "name", "tags": {k: v}, "launch_permission_user_ids": [..]}
  moto-inspect.py images ENDPOINT REGION
      [{"image_id", "state", "name"}]  -- AMIs owned by the moto account (not moto's seed AMIs),
      to check that a failed bake left none behind
  moto-inspect.py instances ENDPOINT REGION
      [{"instance_id", "state", "subnet_id", "vpc_id", "image_id", "instance_type", "key_name", "tags"}]
  moto-inspect.py keypairs ENDPOINT REGION
      [{"key_name", "key_pair_id"}]
  moto-inspect.py security-groups ENDPOINT REGION
      [{"group_id", "group_name", "vpc_id"}]   -- includes each VPC's "default" group
  moto-inspect.py calls RECORDING
      [{"region", "service", "action", "access_key", "params": {k: v}}]  -- one per request in a
      moto recording (moto-start.sh's WORKDIR/moto_recording.jsonl), in order. region, service and
      access key come from the SigV4 Authorization header; "?" when a request was not signed.

Credentials are fake: moto accepts any, and these calls must not show up as Packer's in `calls`.
"""
import base64
import json
import re
import sys
import urllib.parse

ACCESS_KEY = "AKIAKILNINSPECTFAKE0"
SECRET_KEY = "kiln-inspect-fake-secret"

# SigV4: "AWS4-HMAC-SHA256 Credential=<key id>/<yyyymmdd>/<region>/<service>/aws4_request, ..."
CREDENTIAL = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


def ec2(endpoint, region):
    import boto3  # only the EC2 subcommands need it; `calls` works with a bare python3

    return boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def tag_map(tags):
    return {t["Key"]: t["Value"] for t in tags or []}


def cmd_image(endpoint, region, ami_id):
    from botocore.exceptions import ClientError

    client = ec2(endpoint, region)
    try:
        images = client.describe_images(ImageIds=[ami_id])["Images"]
    except ClientError as e:
        if e.response["Error"]["Code"].startswith("InvalidAMIID"):
            images = []
        else:
            raise
    if not images:
        return {"image_id": ami_id, "exists": False, "state": None, "name": None,
                "tags": {}, "launch_permission_user_ids": []}
    image = images[0]
    perms = client.describe_image_attribute(ImageId=ami_id, Attribute="launchPermission")
    users = sorted(p["UserId"] for p in perms.get("LaunchPermissions", []) if "UserId" in p)
    return {
        "image_id": ami_id,
        "exists": True,
        "state": image.get("State"),
        "name": image.get("Name"),
        "tags": tag_map(image.get("Tags")),
        "launch_permission_user_ids": users,
    }


def cmd_images(endpoint, region):
    images = ec2(endpoint, region).describe_images(Owners=["self"])["Images"]
    return sorted(
        ({"image_id": i["ImageId"], "state": i.get("State"), "name": i.get("Name")} for i in images),
        key=lambda i: i["image_id"],
    )


def cmd_instances(endpoint, region):
    out = []
    for reservation in ec2(endpoint, region).describe_instances()["Reservations"]:
        for i in reservation["Instances"]:
            out.append({
                "instance_id": i["InstanceId"],
                "state": i["State"]["Name"],
                "subnet_id": i.get("SubnetId"),
                "vpc_id": i.get("VpcId"),
                "image_id": i.get("ImageId"),
                "instance_type": i.get("InstanceType"),
                "key_name": i.get("KeyName"),
                "tags": tag_map(i.get("Tags")),
            })
    return out


def cmd_keypairs(endpoint, region):
    pairs = ec2(endpoint, region).describe_key_pairs()["KeyPairs"]
    return [{"key_name": k["KeyName"], "key_pair_id": k.get("KeyPairId")} for k in pairs]


def cmd_security_groups(endpoint, region):
    groups = ec2(endpoint, region).describe_security_groups()["SecurityGroups"]
    return [{"group_id": g["GroupId"], "group_name": g["GroupName"], "vpc_id": g.get("VpcId")}
            for g in groups]


def cmd_calls(recording):
    calls = []
    with open(recording, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            entry = json.loads(line)
            headers = entry.get("headers") or {}
            m = CREDENTIAL.search(headers.get("Authorization", ""))
            access_key, region, service = m.groups() if m else ("?", "?", "?")
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode("utf-8", "replace")
            # EC2 is a query API: the action and its parameters are form-encoded in the body
            # (or the URL query for GETs).
            query = body or urllib.parse.urlsplit(entry.get("url", "")).query
            params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
            action = params.pop("Action", None) or headers.get("X-Amz-Target") or entry.get("method")
            params.pop("Version", None)
            calls.append({"region": region, "service": service, "action": action,
                          "access_key": access_key, "params": params})
    return calls


COMMANDS = {
    "image": (cmd_image, 3),
    "images": (cmd_images, 2),
    "instances": (cmd_instances, 2),
    "keypairs": (cmd_keypairs, 2),
    "security-groups": (cmd_security_groups, 2),
    "calls": (cmd_calls, 1),
}


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS or len(argv) - 2 != COMMANDS[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    func, _ = COMMANDS[argv[1]]
    try:
        result = func(*argv[2:])
    except Exception as e:  # one line for the calling test's failure message
        print(f"moto-inspect.py {argv[1]}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
