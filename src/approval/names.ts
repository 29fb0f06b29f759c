/**
 * How the gate and the plan policy compare and name people: GitHub logins and team slugs
 * compare case-insensitively, `@alice` is `alice`, and `@org/slug`, `org/slug` and `slug` name
 * the same team.
 */

/** GitHub logins are case-insensitive; a leading `@` is not part of the name. */
export function loginKey(login: string): string {
  return login.replace(/^@/, "").toLowerCase();
}

/** A team's slug as compared: without `@`, without the `org/` part, lower case. */
export function teamKey(team: string): string {
  return team.replace(/^@/, "").replace(/^[^/]*\//, "").toLowerCase();
}

/** "@alice" and "a member of team dba", as replies name the people a rule asks for. */
export function peopleNames(who: { users: readonly string[]; teams: readonly string[] }): string[] {
  return [...who.users.map((u) => `@${u.replace(/^@/, "")}`), ...who.teams.map((t) => `a member of team ${t.replace(/^@/, "")}`)];
}

export function joinAnd(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

export function joinOr(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} or ${items[items.length - 1]}`;
}
