// `pusher users add|list|remove`: SIP users the reference cfg authenticates REGISTERs against (sip.auth).

import { runningConfig } from "./cluster-options";
import { CliError, usageError } from "./config-file";
import { addUser, listUsers, parseSipUser, removeUser } from "./users-database";

export async function runUsers(configPath: string, args: string[], json: boolean): Promise<void> {
  const [action, ...rest] = args;
  const { config, paths } = runningConfig(configPath);
  const file = paths.usersDatabase;
  switch (action) {
    case "add": {
      if (rest.length !== 2) throw usageError(`expected "users add <user@domain> <password>"`);
      const user = parseSipUser(rest[0]);
      addUser(file, user, rest[1]);
      console.log(`user ${user.username}@${user.domain} saved (HA1 only) in ${file}`);
      if (!config.sip.auth) console.log("note: sip.auth is false in the config, so REGISTERs are not authenticated");
      return;
    }
    case "list": {
      if (rest.length) throw usageError(`expected "users list [--json]"`);
      const users = listUsers(file);
      if (json) console.log(JSON.stringify(users.map((user) => `${user.username}@${user.domain}`)));
      else for (const user of users) console.log(`${user.username}@${user.domain}`);
      return;
    }
    case "remove": {
      if (rest.length !== 1) throw usageError(`expected "users remove <user@domain>"`);
      const user = parseSipUser(rest[0]);
      if (!removeUser(file, user))
        throw new CliError("PUSHER_ERR_NO_SUCH_USER", `no user ${user.username}@${user.domain} in ${file}`);
      console.log(`user ${user.username}@${user.domain} removed`);
      return;
    }
    default:
      throw usageError(`expected "users add|list|remove", got ${JSON.stringify(action ?? "")}`);
  }
}
