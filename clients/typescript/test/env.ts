// What the tests are run against: scripts/typescript-client sets these.

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") {
    throw new Error(`${name} is not set: run the tests through scripts/typescript-client`);
  }
  return value;
}

export const baseUrl = required("USER_API_URL");
export const admin = {
  username: required("USER_API_ADMIN_USERNAME"),
  password: required("USER_API_ADMIN_PASSWORD"),
};
/** Names made by this run, unique across runs against one database. */
export function unique(name: string): string {
  return `${name}_${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`.slice(0, 32);
}
