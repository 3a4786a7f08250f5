// A SAML identity provider for tests: an HTTPS server with its own key and
// certificate that receives pgveil's AuthnRequest by the HTTP-Redirect
// binding (SAMLRequest: raw deflate + base64), reads the request's ID and ACS
// URL, and answers the auto-posting form a real IdP sends, holding a Response
// with an Assertion signed by xml-crypto. `next` shapes the following
// answer, including each kind of bad response pgveil must refuse.
import https from 'node:https';
import type net from 'node:net';
import { randomBytes } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { SignedXml } from 'xml-crypto';
import { rsaCert, type TestCert } from '../auth/test-certs.js';

export const IDP_ENTITY_ID = 'https://idp.test/saml';

export interface SamlAnswer {
  /** NameID of the Subject. */
  nameID: string;
  /** Attributes by name; a list is a multi-valued attribute. */
  attributes: Record<string, string | string[]>;
  /** What is signed (default: the assertion). */
  sign?: 'assertion' | 'response' | 'both' | 'none';
  /** Signs with this key and certificate instead of the IdP's own. */
  signer?: TestCert;
  /** A status code other than Success: the response then carries no assertion (the IdP refused the login). */
  status?: string;
  /** False: InResponseTo only on the Response, not on the SubjectConfirmationData (allowed by SAML). */
  subjectInResponseTo?: boolean;
  /** The SubjectConfirmationData Recipient (default: the request's ACS URL; null: none). */
  recipient?: string | null;
  /** The audience (default: the request's Issuer). */
  audience?: string;
  /** Moves the assertion's validity window, in ms (negative: expired). */
  shiftMs?: number;
  /** The InResponseTo written (default: the request's ID; null: none at all). */
  inResponseTo?: string | null;
  /** Signature wrapping: `beside` adds a second, unsigned assertion for `as` next to the signed one; `nested` puts an unsigned assertion for `as` first and hides the signed one inside it. */
  wrap?: { how: 'beside' | 'nested'; as: string };
}

export interface SeenRequest { id: string; acsUrl: string; issuer: string; xml: string }

export interface SamlIdp {
  /** Where pgveil sends the browser (`sso.saml.entryPoint`). */
  entryPoint: string;
  /** Signs the assertions (`sso.saml.idpCert` is its certificate). */
  cert: TestCert;
  /** The HTTPS server's certificate (the browser trusts it). */
  tls: TestCert;
  /** The answer to the next AuthnRequest. */
  next: SamlAnswer;
  requests: SeenRequest[];
  /** Builds the base64 SAMLResponse for a request as `next` says (also for responses made without a redirect). */
  respond(request: Pick<SeenRequest, 'id' | 'acsUrl' | 'issuer'>, answer?: SamlAnswer): string;
  close(): Promise<void>;
}

export async function startSamlIdp(): Promise<SamlIdp> {
  const cert = rsaCert('test saml idp');
  const tls = rsaCert('127.0.0.1');
  const idp: SamlIdp = {
    entryPoint: '',
    cert,
    tls,
    next: { nameID: 'nobody@example.com', attributes: {} },
    requests: [],
    respond: (request, answer = idp.next) => Buffer.from(responseXml(request, answer, cert)).toString('base64'),
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
  const server = https.createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://idp.test');
    const encoded = url.searchParams.get('SAMLRequest');
    if (url.pathname !== '/sso' || !encoded) { res.writeHead(404).end(); return; }
    const xml = inflateRawSync(Buffer.from(encoded, 'base64')).toString('utf8');
    const request = { id: attribute(xml, 'ID'), acsUrl: attribute(xml, 'AssertionConsumerServiceURL'), issuer: element(xml, 'Issuer'), xml };
    idp.requests.push(request);
    const response = idp.respond(request);
    res.writeHead(200, { 'content-type': 'text/html' }).end(`<html><body onload="document.forms[0].submit()">
<form method="post" action="${request.acsUrl}"><input type="hidden" name="SAMLResponse" value="${response}"><noscript><button>Continue</button></noscript></form>
</body></html>`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  idp.entryPoint = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}/sso`;
  return idp;
}

/** The first value of an attribute in the request (the request is pgveil's own, one element per attribute name). */
function attribute(xml: string, name: string): string {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(xml);
  if (!m) throw new Error(`AuthnRequest without ${name}`);
  return m[1];
}

function element(xml: string, localName: string): string {
  const m = new RegExp(`<(?:\\w+:)?${localName}[^>]*>([^<]*)<`).exec(xml);
  if (!m) throw new Error(`AuthnRequest without ${localName}`);
  return m[1];
}

const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const newId = () => `_${randomBytes(16).toString('hex')}`;
const NS = 'xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"';

function responseXml(request: Pick<SeenRequest, 'id' | 'acsUrl' | 'issuer'>, answer: SamlAnswer, ownCert: TestCert): string {
  const t = Date.now() + (answer.shiftMs ?? 0);
  const iso = (ms: number) => new Date(t + ms).toISOString();
  const inResponseTo = answer.inResponseTo === undefined ? request.id : answer.inResponseTo;
  const irt = inResponseTo === null ? '' : ` InResponseTo="${esc(inResponseTo)}"`;
  const signer = answer.signer ?? ownCert;
  const sign = answer.sign ?? 'assertion';

  if (answer.status) {
    return `<samlp:Response ${NS} ID="${newId()}" Version="2.0" IssueInstant="${iso(0)}" Destination="${esc(request.acsUrl)}"${irt}>`
      + `<saml:Issuer>${IDP_ENTITY_ID}</saml:Issuer>`
      + `<samlp:Status><samlp:StatusCode Value="${esc(answer.status)}"/><samlp:StatusMessage>&lt;script&gt;user not assigned</samlp:StatusMessage></samlp:Status>`
      + '</samlp:Response>';
  }
  let assertion = assertionXml(answer.nameID, answer.attributes, { request, answer, iso, irt });
  if (sign === 'assertion' || sign === 'both') assertion = signed(assertion, 'Assertion', signer);
  if (answer.wrap) {
    const evil = assertionXml(answer.wrap.as, { ...answer.attributes, email: answer.wrap.as }, { request, answer, iso, irt });
    assertion = answer.wrap.how === 'beside'
      ? evil + assertion
      : evil.replace('</saml:Subject>', `</saml:Subject><saml:Advice>${assertion}</saml:Advice>`);
  }
  let response = `<samlp:Response ${NS} ID="${newId()}" Version="2.0" IssueInstant="${iso(0)}" Destination="${esc(request.acsUrl)}"${irt}>`
    + `<saml:Issuer>${IDP_ENTITY_ID}</saml:Issuer>`
    + '<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
    + assertion
    + '</samlp:Response>';
  if (sign === 'response' || sign === 'both') response = signed(response, 'Response', signer);
  return response;
}

interface AssertionContext {
  request: Pick<SeenRequest, 'id' | 'acsUrl' | 'issuer'>;
  answer: SamlAnswer;
  iso: (ms: number) => string;
  irt: string;
}

function assertionXml(nameID: string, attributes: Record<string, string | string[]>, { request, answer, iso, irt }: AssertionContext): string {
  const attrs = Object.entries(attributes).map(([name, value]) => `<saml:Attribute Name="${esc(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">`
    + (Array.isArray(value) ? value : [value]).map((v) => `<saml:AttributeValue>${esc(v)}</saml:AttributeValue>`).join('')
    + '</saml:Attribute>').join('');
  const recipient = answer.recipient === undefined ? request.acsUrl : answer.recipient;
  const recipientAttr = recipient === null ? '' : ` Recipient="${esc(recipient)}"`;
  return `<saml:Assertion ${NS} ID="${newId()}" Version="2.0" IssueInstant="${iso(0)}">`
    + `<saml:Issuer>${IDP_ENTITY_ID}</saml:Issuer>`
    + `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">${esc(nameID)}</saml:NameID>`
    + `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData${answer.subjectInResponseTo === false ? '' : irt}${recipientAttr} NotOnOrAfter="${iso(5 * 60_000)}"/></saml:SubjectConfirmation></saml:Subject>`
    + `<saml:Conditions NotBefore="${iso(-60_000)}" NotOnOrAfter="${iso(5 * 60_000)}"><saml:AudienceRestriction><saml:Audience>${esc(answer.audience ?? request.issuer)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>`
    + `<saml:AuthnStatement AuthnInstant="${iso(0)}" SessionIndex="${newId()}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`
    + (attrs ? `<saml:AttributeStatement>${attrs}</saml:AttributeStatement>` : '')
    + '</saml:Assertion>';
}

/** An enveloped RSA-SHA256 signature over the (first) element of that local name, placed after its Issuer as SAML requires. */
function signed(xml: string, localName: 'Assertion' | 'Response', signer: TestCert): string {
  const sig = new SignedXml({
    privateKey: signer.keyPem,
    publicCert: signer.certPem,
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  const target = `/*[local-name(.)='${localName}']`;
  sig.addReference({
    xpath: target,
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
  });
  sig.computeSignature(xml, { location: { reference: `${target}/*[local-name(.)='Issuer']`, action: 'after' } });
  return sig.getSignedXml();
}
