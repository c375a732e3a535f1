// Who the server takes this page to be (SystemService.GetIdentity) and what that
// allows: the page hides or disables what the role may not do. The server
// decides; these checks only keep a person from pressing buttons that would be
// refused.
import type { CommandInfo } from "../gen/switchyard/v1/device_pb";

export interface Identity {
  name: string;
  role: string;
  authenticated: boolean;
  method: string;
  allowed: Set<string>;
  serverVersion: string;
}

export const unknownIdentity: Identity = {
  name: "",
  role: "",
  authenticated: false,
  method: "",
  allowed: new Set(),
  serverVersion: "",
};

const ranks: Record<string, number> = { viewer: 1, operator: 2, admin: 3 };

/** roleRank orders roles viewer < operator < admin; unknown roles rank 0. */
export function roleRank(role: string): number {
  return ranks[role] ?? 0;
}

/** may reports whether the identity's role may call a full RPC name. */
export function may(id: Identity, method: string): boolean {
  return id.allowed.has(method);
}

/** commandRole is the role a named command needs (empty means operator). */
export function commandRole(info: CommandInfo): string {
  return info.role || "operator";
}

/** mayRun reports whether the identity may send a named command. */
export function mayRun(id: Identity, info: CommandInfo, sendMethod: string): boolean {
  return may(id, sendMethod) && roleRank(id.role) >= roleRank(commandRole(info));
}
