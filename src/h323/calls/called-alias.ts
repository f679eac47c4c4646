import { type AliasText, aliasFromText } from '../api.ts';
import type { H323Route } from '../gatekeeper/gatekeeper.ts';
import type { AliasAddress } from '../per/generated/types.ts';
import { decodePartyNumber, encodePartyNumber, IE, type InformationElement } from '../q931/q931.ts';

/** The called party of a Setup: its UUIE destinationAddress and the Q.931 information elements. */
export interface CalledParty {
  destinationAddress: AliasAddress[] | undefined;
  ies: InformationElement[];
}

const E164 = /^[0-9#*,]{1,128}$/;

/**
 * The called party of the Setup the node sends on (leg B) once routing has found the target. When the search rewrote
 * the called alias (a pre-search transform, a search rule's strip or replace), the Setup carries the alias searched in
 * the target zone, as SIP's Request-URI does: `destinationAddress` becomes that one alias, typed as the callee
 * registered it when it is a registration here (else by its form: digits are dialledDigits), and a Q.931 Called party
 * number follows it (its digits replaced, or removed when the new alias is no number). Returned unchanged when routing
 * did not rewrite, or did not say what it searched.
 */
export function calledAfterRouting(called: CalledParty, route: H323Route): CalledParty {
  if (route.kind === 'rejected' || route.kind === 'not-found' || !route.found) return called;
  const { alias, dialled } = route.found;
  if (alias === dialled || alias === '') return called;
  const registered: AliasText | undefined =
    route.kind === 'endpoint' ? route.registration.aliases.find((a) => a.value === alias) : undefined;
  const typed: AliasAddress =
    registered && (registered.kind === 'h323-ID' || registered.kind === 'url-ID' || registered.kind === 'email-ID')
      ? { choice: registered.kind, value: alias }
      : aliasFromText(alias);
  const ies: InformationElement[] = [];
  for (const ie of called.ies) {
    if (ie.id !== IE.calledPartyNumber) {
      ies.push(ie);
      continue;
    }
    if (!E164.test(alias)) continue;
    const n = decodePartyNumber(ie.data);
    ies.push({
      ...ie,
      data: encodePartyNumber(
        n.ok ? { ...n.value, digits: alias } : { typeOfNumber: 0, numberingPlan: 1, digits: alias },
      ),
    });
  }
  return { destinationAddress: [typed], ies };
}
