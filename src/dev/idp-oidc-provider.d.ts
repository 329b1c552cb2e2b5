// oidc-provider ships no type declarations; this is the small surface the dev IdP uses.
declare module 'oidc-provider' {
  import type Koa from 'koa';
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface InteractionDetails {
    uid: string;
    prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
    params: Record<string, unknown>;
    session?: { accountId?: string; uid?: string };
    grantId?: string;
  }

  export interface GrantInstance {
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: string[]): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface ClientInstance {
    clientId: string;
    backchannelLogout(sub: string, sid: string): Promise<void>;
  }

  export class Provider extends Koa {
    constructor(issuer: string, configuration: Record<string, unknown>);
    issuer: string;
    proxy: boolean;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
    interactionResult(req: IncomingMessage, res: ServerResponse, result: Record<string, unknown>,
      opts?: { mergeWithLastSubmission?: boolean }): Promise<string>;
    Grant: {
      new (init: { accountId: string; clientId: string }): GrantInstance;
      find(id: string): Promise<GrantInstance | undefined>;
    };
    Client: { find(id: string): Promise<ClientInstance | undefined> };
    AccessToken: { find(value: string): Promise<(Record<string, unknown> & { destroy(): Promise<void> }) | undefined> };
    RefreshToken: { find(value: string): Promise<(Record<string, unknown> & { destroy(): Promise<void> }) | undefined> };
  }

  export const errors: Record<string, new (description?: string) => Error>;
  export default Provider;
}
