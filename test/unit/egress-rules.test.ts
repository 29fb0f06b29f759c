import { describe, expect, it } from "vitest";
import { EgressConfigError, isAllowed, parseEgressRules, type EgressRule } from "../../src/approval/egress.js";
import { isPrivateAddress } from "../../src/connectors/egress-proxy.js";

function parseError(entry: string): EgressConfigError {
  try {
    parseEgressRules([entry]);
  } catch (err) {
    expect(err).toBeInstanceOf(EgressConfigError);
    return err as EgressConfigError;
  }
  throw new Error(`expected ${JSON.stringify(entry)} to be rejected`);
}

describe("parseEgressRules", () => {
  it("parses names, wildcards and IP literals, defaulting the port to 443", () => {
    expect(
      parseEgressRules(["api.pulumi.com:443", "*.amazonaws.com", "127.0.0.1:8080", "Registry.Terraform.IO", "[2001:DB8::1]:8443", "::1"]),
    ).toEqual([
      { host: "api.pulumi.com", port: 443 },
      { host: "*.amazonaws.com", port: 443 },
      { host: "127.0.0.1", port: 8080 },
      { host: "registry.terraform.io", port: 443 },
      { host: "2001:db8::1", port: 8443 },
      { host: "::1", port: 443 },
    ]);
  });

  it("lowercases, trims, drops a trailing dot and de-duplicates", () => {
    expect(parseEgressRules(["  API.Example.com.:443 ", "api.example.com", "api.example.com:444"])).toEqual([
      { host: "api.example.com", port: 443 },
      { host: "api.example.com", port: 444 },
    ]);
  });

  it("accepts an empty list", () => {
    expect(parseEgressRules([])).toEqual([]);
  });

  it.each([
    ["", /empty/],
    ["   ", /empty/],
    ["https://api.example.com", /scheme/],
    ["http://api.example.com:80", /scheme/],
    ["api.example.com/v1", /path/],
    ["api.example.com:443/", /path/],
    ["api.example.com:0", /port "0"/],
    ["api.example.com:65536", /port "65536"/],
    ["api.example.com:-1", /port/],
    ["api.example.com:https", /port "https"/],
    ["api.example.com:", /port ""/],
    ["*", /bare "\*"/],
    ["*:443", /bare "\*"/],
    ["*.com", /top-level domain/],
    ["*.com:443", /top-level domain/],
    ["*.", /bare "\*"/],
    ["*..com", /not a valid domain/],
    ["*.*.example.com", /one leading/],
    ["api.*.example.com", /wildcard is only allowed/],
    ["a*.example.com", /wildcard is only allowed/],
    ["user:pw@api.example.com", /credentials/],
    ["api.example.com?x=1", /query/],
    ["exa mple.com", /whitespace/],
    ["-bad.example.com", /not a valid host/],
    ["under_score.example.com", /not a valid host/],
    ["2001:db8::1:443:x", /not a valid host|bracketed/],
    ["api.example.com:443:1", /bracketed/],
    ["[not-ipv6]:443", /not an IPv6/],
    ["[::1", /bracketed/],
    ["1.2.3", /not a valid host/],
    ["2130706433", /not a valid host/],
    ["010.0.0.1", /not a valid host/],
    [":443", /missing host/],
  ])("rejects %j", (entry, message) => {
    const err = parseError(entry);
    expect(err.message).toMatch(message);
    expect(err.message).toContain(JSON.stringify(entry));
  });

  it("reports every bad entry at once, with its index", () => {
    expect(() => parseEgressRules(["ok.example.com", "https://x.example.com", "*"])).toThrow(
      /entry 1 "https:\/\/x\.example\.com".*entry 2 "\*"/,
    );
  });
});

describe("isAllowed", () => {
  const rules: EgressRule[] = parseEgressRules([
    "api.pulumi.com:443",
    "*.amazonaws.com",
    "127.0.0.1:8080",
    "[2001:db8::1]:8443",
  ]);

  it("matches an exact name and port", () => {
    expect(isAllowed(rules, "api.pulumi.com", 443)).toBe(true);
    expect(isAllowed(rules, "api.pulumi.com", 80)).toBe(false);
    expect(isAllowed(rules, "app.pulumi.com", 443)).toBe(false);
    expect(isAllowed(rules, "pulumi.com", 443)).toBe(false);
    expect(isAllowed(rules, "x.api.pulumi.com", 443)).toBe(false);
  });

  it("is case-insensitive and ignores a trailing dot", () => {
    expect(isAllowed(rules, "API.Pulumi.COM", 443)).toBe(true);
    expect(isAllowed(rules, "api.pulumi.com.", 443)).toBe(true);
    expect(isAllowed(rules, "S3.US-East-1.AmazonAWS.com.", 443)).toBe(true);
  });

  it("wildcards match subdomains at any depth but never the apex or look-alikes", () => {
    expect(isAllowed(rules, "sts.amazonaws.com", 443)).toBe(true);
    expect(isAllowed(rules, "s3.eu-west-1.amazonaws.com", 443)).toBe(true);
    expect(isAllowed(rules, "amazonaws.com", 443)).toBe(false);
    expect(isAllowed(rules, "evilamazonaws.com", 443)).toBe(false);
    expect(isAllowed(rules, "amazonaws.com.evil.test", 443)).toBe(false);
    expect(isAllowed(rules, "sts.amazonaws.com", 8443)).toBe(false);
    // The literal wildcard text is not a host that can be matched.
    expect(isAllowed(rules, "*.amazonaws.com", 443)).toBe(false);
  });

  it("matches IP literals exactly, including IPv6 in any spelling", () => {
    expect(isAllowed(rules, "127.0.0.1", 8080)).toBe(true);
    expect(isAllowed(rules, "127.0.0.1", 443)).toBe(false);
    expect(isAllowed(rules, "127.0.0.2", 8080)).toBe(false);
    expect(isAllowed(rules, "[2001:DB8:0:0::1]", 8443)).toBe(true);
    expect(isAllowed(rules, "2001:db8::1", 8443)).toBe(true);
    expect(isAllowed(rules, "::ffff:127.0.0.1", 8080)).toBe(false);
  });

  it("rejects malformed hosts and ports instead of guessing", () => {
    expect(isAllowed(rules, "", 443)).toBe(false);
    expect(isAllowed(rules, "api.pulumi.com:443", 443)).toBe(false);
    expect(isAllowed(rules, "api.pulumi.com", 0)).toBe(false);
    expect(isAllowed(rules, "api.pulumi.com", 443.5)).toBe(false);
    expect(isAllowed(rules, "api.pulumi.com", 70000)).toBe(false);
    expect(isAllowed([], "api.pulumi.com", 443)).toBe(false);
  });
});

describe("isPrivateAddress", () => {
  it.each([
    "127.0.0.1",
    "127.255.0.9",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fd00::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "64:ff9b::a9fe:a9fe",
    "not-an-ip",
  ])("blocks %s", (ip) => {
    expect(isPrivateAddress(ip)).toBe(true);
  });

  it.each(["8.8.8.8", "172.32.0.1", "192.169.0.1", "52.94.236.248", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"])(
    "allows public %s",
    (ip) => {
      expect(isPrivateAddress(ip)).toBe(false);
    },
  );
});
