// google.rpc.ErrorInfo, which every Switchyard error carries, read from its wire
// bytes (the page has no generated code for google.rpc).
import { BinaryReader } from "@bufbuild/protobuf/wire";

/** ErrorInfo is google.rpc.ErrorInfo, which every Switchyard error carries. */
export interface ErrorInfo {
  reason: string;
  domain: string;
  metadata: Record<string, string>;
}

/**
 * decodeErrorInfo reads a google.rpc.ErrorInfo (reason = 1, domain = 2,
 * metadata = 3 as map<string, string>) from its wire bytes.
 */
export function decodeErrorInfo(bytes: Uint8Array): ErrorInfo {
  const out: ErrorInfo = { reason: "", domain: "", metadata: {} };
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [field, wireType] = r.tag();
    if (field === 1) out.reason = r.string();
    else if (field === 2) out.domain = r.string();
    else if (field === 3) {
      const entry = new BinaryReader(r.bytes());
      let k = "", v = "";
      while (entry.pos < entry.len) {
        const [f, wt] = entry.tag();
        if (f === 1) k = entry.string();
        else if (f === 2) v = entry.string();
        else entry.skip(wt);
      }
      out.metadata[k] = v;
    } else r.skip(wireType);
  }
  return out;
}
