import { loadRepoConfig } from "./src/config/repo-config.js";
for (const t of [
 "version: 1\nstacks:\n  - name: dev\n    dir: infra\n   engine: pulumi\nsteps:\n  lint: x\n",
 "version: 1\nstacks:\n  - name: dev\n    dir: infra: x\n",
 "version: 1\nstacks:\n  - name: dev\n\tdir: infra\n",
 "version: 1\nstacks:\n  - name: \"dev\n",
 "version: 1\nsteps:\n  lint: *nope\n",
 "version: 1\nstacks: [\n",
 "x",
 "version: 1\nstacks:\n  - name: dev\n    dir:\nsteps: {lint: x}\n",
 "version: \"1\"\nstacks:\n  - name: dev\n    engine: docker\nsteps: {lint: x}\n",
 "version: 1\nStacks:\n  - name: dev\nsteps: {lint: x}\n",
 "version: 1\nstacks:\n  - name: dev\n    steps: {lint: [\"\"], test: \"   \", preview: {run: x, timeout_seconds: 1.5}}\n",
 "version: 1\nstacks:\n  - name: dev\nsteps: {lint: x}\n`weird@key`: 1\n",
 "version: 1\nstacks:\n  - name: dev\nsteps: {lint: x}\n__proto__: {polluted: 1}\n",
]) { console.log(JSON.stringify(loadRepoConfig(t))); }
