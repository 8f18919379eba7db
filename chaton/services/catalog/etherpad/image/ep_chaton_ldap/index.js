'use strict';
/*
 * Etherpad login against Chaton's LDAP directory.
 *
 * Etherpad asks for HTTP basic credentials when REQUIRE_AUTHENTICATION is
 * true; this hook checks them with a bind as the person (their own password,
 * the one Chaton hashes for every service) and, when LDAP_LOGIN_GROUP_DN is
 * set, requires that the person be a member of that group (a groupOfNames:
 * the directory has no memberOf overlay, so the group is read, not the
 * person). It is configured by environment variables only, so that the same
 * plugin runs in the official image and in Chaton's test image:
 *
 *   LDAP_URL             ldap://host:port            (unset: the hook stays out of the way)
 *   LDAP_BIND_DN         the account that searches for the person; empty: the person
 *   LDAP_BIND_PASSWORD   itself (uid=<name>,LDAP_PEOPLE_DN with their own password)
 *   LDAP_PEOPLE_DN       where the people are (ou=people,<base>)
 *   LDAP_USER_FILTER     default (&(objectClass=inetOrgPerson)(uid={{username}}))
 *   LDAP_LOGIN_GROUP_DN  the group whose members may log in (empty: every account)
 */

const LdapAuth = require('ldapauth-fork');

const DEFAULT_FILTER = '(&(objectClass=inetOrgPerson)(uid={{username}}))';

// RFC 4514: the characters a DN value escapes (the directory's uids never have them; a
// name typed at the login prompt may).
const escapeDnValue = (value) => value
    .replace(/[\\,+"<>;=]/g, (character) => `\\${character}`)
    .replace(/^[ #]/, (character) => `\\${character}`)
    .replace(/ $/, '\\ ');

const configuration = () => ({
  url: process.env.LDAP_URL || '',
  bindDN: process.env.LDAP_BIND_DN || '',
  bindCredentials: process.env.LDAP_BIND_PASSWORD || '',
  searchBase: process.env.LDAP_PEOPLE_DN || '',
  searchFilter: process.env.LDAP_USER_FILTER || DEFAULT_FILTER,
  loginGroup: process.env.LDAP_LOGIN_GROUP_DN || '',
});

// Resolves to the person's entry, or null for a wrong password, an unknown
// person or one outside the login group. A directory that cannot be reached
// is an error: the log says so, and the person is refused.
const check = (config, username, password) => new Promise((resolve, reject) => {
  const options = {
    url: config.url,
    // Without a service account, the person searches for themselves: the directory lets an
    // authenticated account read, and a wrong password fails at this first bind.
    bindDN: config.bindDN || `uid=${escapeDnValue(username)},${config.searchBase}`,
    bindCredentials: config.bindDN ? config.bindCredentials : password,
    searchBase: config.searchBase,
    searchFilter: config.searchFilter,
    searchAttributes: ['uid', 'cn', 'displayName', 'mail'],
    connectTimeout: 5000,
    timeout: 5000,
  };
  if (config.loginGroup) {
    // Read the one group and keep it only when it names the person's DN.
    options.groupSearchBase = config.loginGroup;
    options.groupSearchScope = 'base';
    options.groupSearchFilter = '(member={{dn}})';
    options.groupSearchAttributes = ['cn'];
  }
  const client = new LdapAuth(options);
  client.on('error', (error) => reject(error));
  client.authenticate(username, password, (error, user) => {
    client.close(() => {});
    if (error) {
      // ldapauth-fork reports "no such user" and a refused bind as strings or
      // InvalidCredentialsError: both are a refusal, not a failure.
      const refused = typeof error === 'string' || (error && error.name === 'InvalidCredentialsError');
      return refused ? resolve(null) : reject(error);
    }
    if (config.loginGroup && !(user._groups && user._groups.length)) return resolve(null);
    resolve(user);
  });
});

exports.authenticate = async (hookName, context) => {
  const config = configuration();
  if (!config.url) return undefined; // not configured: Etherpad's own users decide
  const {req, username, password} = context;
  if (!username || !password) return undefined; // no credentials yet: Etherpad asks for them
  let user;
  try {
    user = await check(config, username, password);
  } catch (error) {
    console.error(`ep_chaton_ldap: the directory did not answer: ${error && error.message}`);
    return [false];
  }
  if (!user) return [false];
  req.session.user = {
    username,
    displayname: user.displayName || user.cn || username,
    is_admin: false,
  };
  return [true];
};
