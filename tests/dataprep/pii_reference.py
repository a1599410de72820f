"""datatrove 0.10.1's PIIFormatter for tests/dataprep/pii_test.cpp: writes OUT (JSON) with a seeded corpus of texts
holding e-mail addresses, public, private, reserved and leading-zero IPv4 addresses, version-number-like strings and
edge punctuation, the formatter's output for each (one formatter over the whole corpus, in order, so the cycling
replacement index carries across texts), and ipaddress's is_global for a seeded set of addresses.
usage: pii_reference.py OUT
"""
import ipaddress
import json
import random
import sys

from datatrove.pipeline.formatters.pii import PIIFormatter, public_ip_validator


def octet(rng):
    return rng.choice([str(rng.randint(0, 255)), str(rng.randint(0, 9)), "0" + str(rng.randint(0, 99)),
                       str(rng.randint(256, 999)), "255", "0"])


def ip(rng):
    prefixes = ["10", "127", "192.168", "172.16", "172.31", "172.32", "100.64", "100.128", "169.254", "192.0.0",
                "192.0.2", "198.18", "198.51.100", "203.0.113", "224", "240", "255.255.255", "0", "8.8", "1.1"]
    parts = rng.choice(prefixes).split(".") if rng.random() < 0.5 else []
    while len(parts) < 4:
        parts.append(octet(rng))
    return ".".join(parts[:4])


def email(rng):
    local = "".join(rng.choice("abcxyz019._-+!#'") for _ in range(rng.randint(1, 10)))
    domain = rng.choice(["example.com", "mail.co.uk", "a-b.org", "x.y", "-bad.com", "ok-.net", "[192.168.1.1]",
                         "[1.2.3.4]", "localhost", "ünï.de", "xn--9ca.com"])
    return f"{local}@{domain}"


def filler(rng):
    return rng.choice(["see", "v1.2.3.4", "1.2.3", "ver 10.0.0.1.5", "2024-01-15", "x", "tel", "café", "日本",
                       "(", ")", "<", ">", ",", ";", ":", "\"", "'", ".", "…", "@", "a@", "@b", "\n", "1.2.3.4567",
                       "999.1.1.1", "12.34.56.78.90", "ÿ", "_", "mailto:"])


def text(rng):
    pieces = []
    for _ in range(rng.randint(1, 12)):
        r = rng.random()
        pieces.append(email(rng) if r < 0.3 else ip(rng) if r < 0.6 else filler(rng))
    return "".join(p + rng.choice([" ", "", ", ", ".", "\t", "/", "-"]) for p in pieces)


def main():
    rng = random.Random(17)
    texts = [text(rng) for _ in range(3000)]
    formatter = PIIFormatter()
    masked = [formatter.format(t) for t in texts]
    addresses = [f"{a}.{b}.{c}.{d}" for a, b, c, d in
                 ((rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
                  for _ in range(20000))]
    for net in ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
                "192.0.0.0/24", "192.0.0.170/31", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
                "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32"]:
        n = ipaddress.ip_network(net)
        for a in (n.network_address, n.broadcast_address):
            addresses += [str(a), str(a - 1) if int(a) > 0 else "0.0.0.0", str(a + 1) if int(a) < 2**32 - 1 else "1.1.1.1"]
    addresses += ["192.0.0.9", "192.0.0.10", "192.0.0.8", "192.0.0.11"]
    out = {"texts": texts, "masked": masked, "addresses": addresses,
           "global": [public_ip_validator(a) for a in addresses]}
    json.dump(out, open(sys.argv[1], "w", encoding="utf-8"), ensure_ascii=False)


if __name__ == "__main__":
    main()
