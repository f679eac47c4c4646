/** The part of net-snmp (npm, no bundled types) the agent uses. */
declare module 'net-snmp' {
  interface MibRequest {
    instanceNode: { value: unknown };
    done(): void;
  }
  interface Provider {
    name: string;
    type: number;
    oid: string;
    scalarType?: number;
    maxAccess: number;
    handler?: (req: MibRequest) => void;
    tableColumns?: { number: number; name: string; type: number; maxAccess: number; constraints?: unknown }[];
    tableIndex?: { columnName: string }[];
  }
  interface Mib {
    registerProvider(p: Provider): void;
    setScalarValue(name: string, value: unknown): void;
    addTableRow(name: string, row: unknown[]): void;
    deleteTableRow(name: string, index: unknown[]): boolean;
    getTableRowCells(name: string, index: unknown[]): unknown[] | undefined;
    getTableCells(name: string, byRows?: boolean, includeInstances?: boolean): unknown[][];
  }
  interface Authorizer {
    addCommunity(c: string): void;
    addUser(u: {
      name: string;
      level: number;
      authProtocol?: number;
      authKey?: string;
      privProtocol?: number;
      privKey?: string;
    }): void;
  }
  interface Agent {
    getMib(): Mib;
    getAuthorizer(): Authorizer;
    close(cb?: () => void): void;
  }
  const snmp: {
    createAgent(options: Record<string, unknown>, callback: (err: Error | null, data: unknown) => void): Agent;
    MibProviderType: { Scalar: number; Table: number };
    ObjectType: Record<string, number>;
    MaxAccess: Record<string, number>;
    SecurityLevel: { noAuthNoPriv: number; authNoPriv: number; authPriv: number };
    AuthProtocols: { sha: number; md5: number };
    PrivProtocols: { aes: number; des: number };
    AccessControlModelType: { None: number; Simple: number };
  };
  export default snmp;
}
