// The users a session's statement gate looks its account up in. A users.yaml
// user is looked up in users.yaml itself, so a reload's changes (groups,
// attributes, disabling) apply at once. A token login's account is not in the
// file: its session sees users.yaml plus that one account, rebuilt after each
// reload, and only while the account's organization still exists there
// (otherwise the gate finds no account and refuses, failing closed).
import type { User, UsersFile } from '../config/types.js';
import type { ProxyContext } from './context.js';

export function usersWithAccount(ctx: ProxyContext, account: User): () => UsersFile {
  let seen: UsersFile | undefined;
  let view: UsersFile | undefined;
  return () => {
    const current = ctx.users();
    if (current !== seen || !view) {
      seen = current;
      const users = new Map(current.users);
      if (account.org !== undefined && Object.hasOwn(current.organizations, account.org)) users.set(account.name, account);
      else users.delete(account.name);
      view = { ...current, users };
    }
    return view;
  };
}
