// A browser's part for Better Auth's client in Node: a cookie jar for the server at `base`,
// and the Origin header a browser sends. `fetchOptions` goes to `createAuthClient`.
export function browserJar(base) {
  const jar = new Map();
  const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  const fetchOptions = {
    onRequest(ctx) {
      const cookies = cookieHeader();
      if (cookies) ctx.headers.set("cookie", cookies);
      ctx.headers.set("origin", base);
    },
    onResponse(ctx) {
      for (const set of ctx.response.headers.getSetCookie()) {
        const [pair] = set.split(";");
        const at = pair.indexOf("=");
        const name = pair.slice(0, at);
        if (set.includes("Max-Age=0")) jar.delete(name);
        else jar.set(name, pair.slice(at + 1));
      }
    },
  };
  return { jar, cookieHeader, fetchOptions };
}
