import { describe, expect, it } from "vitest";
import { decideRuntime } from "../../src/approval/runtimes.js";

const server = { runtime: undefined, untrustedRuntime: "runsc", allowedRuntimes: ["runc", "runsc"] };

describe("which runtime runs a task", () => {
  it("untrusted code always gets the untrusted runtime, whatever the stack asks for", () => {
    expect(decideRuntime({ untrusted: true, requested: null }, server)).toEqual({ ok: true, runtime: "runsc" });
    expect(decideRuntime({ untrusted: true, requested: "runc" }, server)).toEqual({ ok: true, runtime: "runsc" });
  });
  it("the repository's own code gets its stack's runtime when allowed, else the server's default", () => {
    expect(decideRuntime({ untrusted: false, requested: null }, server)).toEqual({ ok: true, runtime: undefined });
    expect(decideRuntime({ untrusted: false, requested: "runsc" }, server)).toEqual({ ok: true, runtime: "runsc" });
    expect(decideRuntime({ untrusted: false, requested: null }, { ...server, runtime: "runc" })).toEqual({ ok: true, runtime: "runc" });
  });
  it("a runtime the server does not allow is refused with what is allowed", () => {
    const d = decideRuntime({ untrusted: false, requested: "kata-runtime" }, server);
    expect(d).toEqual({ ok: false, message: expect.stringContaining("`kata-runtime` is not allowed on this server (allowed: `runc`, `runsc`)") });
  });
});
