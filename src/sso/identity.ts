// What a browser SSO login proves about a person, whichever protocol carried
// it. The OIDC and SAML pages turn the identity provider's answer into an
// SsoIdentity and hand it to one handler, which decides whether the person
// gets a database password and answers the page.
import type { PortalRequest, PortalResponse } from '../portal/server.js';

export interface SsoIdentity {
  /** The database user name (the configured user claim or attribute). */
  user: string;
  /** The organization claim or attribute, when the identity provider sent one. */
  org?: string;
  /** The groups claim or attribute (empty when absent). */
  groups: string[];
  /** Which protocol proved it. */
  via: 'oidc' | 'saml';
}

/** Turns a proven identity into the page the person sees (a database password, or why there is none). */
export type IdentityHandler = (identity: SsoIdentity, req: PortalRequest) => Promise<PortalResponse>;
