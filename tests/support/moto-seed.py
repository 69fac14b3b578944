#!/usr/bin/env python3
"""Seed a running moto_server for a packer bake and print what the template needs, as JSON.

Usage: moto-seed.py ENDPOINT [KEY_NAME PUBLIC_KEY_FILE]
Prints: {"source_ami": "ami-785db401", "vpc_id": "vpc-...", "subnet_id": "subnet-..."}
With KEY_NAME and PUBLIC_KEY_FILE it also imports that public key as an EC2 key pair (for the
templates' aws_ssh_keypair_name) and adds "key_name" to the output.

moto 5 pre-seeds ~1300 public AMIs per region; ami-785db401 (Canonical's ubuntu xenial
16.04 hvm-ssd, owner 099720109477) exists in us-east-1, so it is a stable source image.
A fresh VPC + subnet (instead of moto's default VPC) lets tests prove that Packer launched the
builder instance where kiln told it to. Credentials are fake: moto accepts any.
"""
import json
import sys

import boto3

SOURCE_AMI = "ami-785db401"
REGION = "us-east-1"


def main() -> int:
    if len(sys.argv) not in (2, 4):
        print(__doc__, file=sys.stderr)
        return 2
    ec2 = boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=sys.argv[1],
        aws_access_key_id="AKIAKILNSEEDFAKE0000",
        aws_secret_access_key="kiln-seed-fake-secret",
    )
    # Fail here, with a clear message, rather than later inside a packer build.
    images = ec2.describe_images(ImageIds=[SOURCE_AMI])["Images"]
    if not images:
        print(f"moto has no {SOURCE_AMI} in {REGION}: not moto 5?", file=sys.stderr)
        return 1
    vpc_id = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(
        VpcId=vpc_id, CidrBlock="10.77.1.0/24", AvailabilityZone=f"{REGION}a"
    )["Subnet"]["SubnetId"]
    seeded = {"source_ami": SOURCE_AMI, "vpc_id": vpc_id, "subnet_id": subnet_id}
    if len(sys.argv) == 4:
        with open(sys.argv[3], "rb") as f:
            ec2.import_key_pair(KeyName=sys.argv[2], PublicKeyMaterial=f.read())
        seeded["key_name"] = sys.argv[2]
    print(json.dumps(seeded))
    return 0


if __name__ == "__main__":
    sys.exit(main())
