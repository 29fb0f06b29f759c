/**
 * Which sandbox image a repository may run. The repository may name one, but only the
 * server's default or an image on the server's allowlist is used (invariant 2).
 */
export type ImageDecision = { ok: true; image: string } | { ok: false; message: string };

export function decideImage(requested: string | undefined, server: { defaultImage: string; allowedImages: string[] }): ImageDecision {
  if (!requested || requested === server.defaultImage) return { ok: true, image: server.defaultImage };
  if (server.allowedImages.includes(requested)) return { ok: true, image: requested };
  const allowed = [server.defaultImage, ...server.allowedImages].map((i) => `\`${i}\``).join(", ");
  return {
    ok: false,
    message: `the sandbox image \`${requested}\` is not on this server's allowlist (allowed: ${allowed}); ask the app's operators to add it to SANDBOX_ALLOWED_IMAGES`,
  };
}
