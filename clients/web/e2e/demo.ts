// Demo starts a real `switchyard demo` for a spec: every port chosen by the
// system (gRPC, HTTP, the simulator's control API), archiving to the QuestDB in
// SWITCHYARD_TEST_QUESTDB when asked. The binary is SWITCHYARD_BIN
// (scripts/web test builds it into .cache/bin).
import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";

const root = resolve(__dirname, "../../..");

export interface DemoOptions {
  args?: string[];
  /** Archive to SWITCHYARD_TEST_QUESTDB (the spec skips when it is unset). */
  questdb?: string;
}

export class Demo {
  readonly url: string; // the dashboard, http://127.0.0.1:PORT/
  readonly grpc: string;
  readonly control: string; // the simulator's control API, http://127.0.0.1:PORT
  readonly startedMs: number;
  private proc: ChildProcess;
  private output: string[];

  private constructor(proc: ChildProcess, url: string, grpc: string, control: string, output: string[], startedMs: number) {
    this.proc = proc;
    this.url = url;
    this.grpc = grpc;
    this.control = control;
    this.output = output;
    this.startedMs = startedMs;
  }

  static bin(): string {
    return process.env.SWITCHYARD_BIN ?? resolve(root, ".cache/bin/switchyard");
  }

  static async start(opts: DemoOptions = {}): Promise<Demo> {
    const args = ["demo", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--control", "127.0.0.1:0", ...(opts.args ?? [])];
    if (opts.questdb) args.push("--questdb", opts.questdb);
    const startedMs = Date.now();
    const proc = spawn(Demo.bin(), args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, SWITCHYARD_QUESTDB: "" } });
    const output: string[] = [];
    let url = "", grpc = "", control = "";
    return await new Promise<Demo>((resolveStart, reject) => {
      const timer = setTimeout(() => fail(new Error("switchyard demo did not start within 60 s")), 60_000);
      const fail = (err: Error) => {
        clearTimeout(timer);
        proc.kill("SIGKILL");
        reject(new Error(`${err.message}\n${output.join("")}`));
      };
      const check = () => {
        if (url && grpc && control) {
          clearTimeout(timer);
          resolveStart(new Demo(proc, url, grpc, control, output, startedMs));
        }
      };
      const onData = (chunk: Buffer) => {
        const text = chunk.toString();
        output.push(text);
        if (output.length > 2000) output.splice(0, 1000);
        url ||= /^dashboard: (http:\/\/\S+)/m.exec(text)?.[1] ?? "";
        grpc ||= /gRPC on (\S+?),/.exec(text)?.[1] ?? "";
        control ||= /msg="simulator control API" url=(http:\/\/[0-9.:]+)/.exec(text)?.[1] ?? "";
        check();
      };
      proc.stdout!.on("data", onData);
      proc.stderr!.on("data", onData);
      proc.on("error", fail);
      proc.on("exit", (code) => fail(new Error(`switchyard demo exited with ${code}`)));
    });
  }

  /** fault switches a simulated instrument's faults (POST /instruments/NAME/fault?...). */
  async fault(instrument: string, query: string): Promise<void> {
    const r = await fetch(`${this.control}/instruments/${instrument}/fault?${query}`, { method: "POST" });
    if (!r.ok) throw new Error(`fault ${instrument} ${query}: ${r.status} ${await r.text()}`);
  }

  log(): string {
    return this.output.join("");
  }

  /** stop interrupts the demo (as Ctrl-C does) and waits for it to exit. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (p.exitCode !== null || p.signalCode !== null) return;
    p.removeAllListeners("exit");
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    p.kill("SIGINT");
    const t = setTimeout(() => p.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(t);
  }
}
