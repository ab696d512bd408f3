// Photos: upload, list, metadata, bytes and deletion for the caller; metadata and bytes of another
// user's photo for anyone signed in.
import { Router } from "express";
import { toJson } from "@bufbuild/protobuf";
import { GetPhotosResponseSchema } from "../../gen/usermesh/photo/v1/photo_pb.js";
import { authOf } from "../request-context.js";
import { sendPhotoContent } from "./photo-content.js";
import { uploadPhoto } from "./photo-upload.js";
import { pageQuery, uuidParams } from "./request-input.js";
import { photoJson, present } from "./response-shapes.js";
import type { RouteDeps } from "./route-deps.js";
import { routeTemplate } from "./route-template.js";

export type PhotoRoutesDeps = Pick<RouteDeps, "photos" | "requireAuth" | "csrf" | "upload">;

/**
 * Authenticated routes over PhotoService. A photo id the owner does not hold is 404 (the service
 * never tells another user's photo from a missing one); uploads answer 413/415/422 as described on
 * uploadPhoto and by the photo service's reasons.
 */
export function createPhotoRouter(deps: PhotoRoutesDeps): Router {
  const { photos, requireAuth, csrf, upload } = deps;
  const router = Router();

  router.post("/me/photos", routeTemplate, requireAuth, csrf, async (req, res) => {
    const photo = await uploadPhoto(req, res, { photos, userId: authOf(res).userId, maxBytes: upload.maxBytes });
    res.status(201).json({ photo: photoJson(photo) });
  });

  router.get("/me/photos", routeTemplate, requireAuth, async (req, res) => {
    const page = await photos.getPhotos({ userId: authOf(res).userId, ...pageQuery(req) });
    res.json(toJson(GetPhotosResponseSchema, page, { alwaysEmitImplicit: true }));
  });

  router.get("/me/photos/:photoId", routeTemplate, requireAuth, async (req, res) => {
    const { photoId } = uuidParams(req, "photoId");
    const found = await photos.getPhoto({ userId: authOf(res).userId, photoId });
    res.json({ photo: photoJson(present(found.photo, "photo")) });
  });

  router.get("/users/:id/photos/:photoId", routeTemplate, requireAuth, async (req, res) => {
    const { id, photoId } = uuidParams(req, "id", "photoId");
    const found = await photos.getPhoto({ userId: id, photoId });
    res.json({ photo: photoJson(present(found.photo, "photo")) });
  });

  router.get("/me/photos/:photoId/content", routeTemplate, requireAuth, async (req, res) => {
    const { photoId } = uuidParams(req, "photoId");
    await sendPhotoContent(req, res, photos, { userId: authOf(res).userId, photoId });
  });

  router.get("/users/:id/photos/:photoId/content", routeTemplate, requireAuth, async (req, res) => {
    const { id, photoId } = uuidParams(req, "id", "photoId");
    await sendPhotoContent(req, res, photos, { userId: id, photoId });
  });

  router.delete("/me/photos/:photoId", routeTemplate, requireAuth, csrf, async (req, res) => {
    const { photoId } = uuidParams(req, "photoId");
    await photos.deletePhoto({ userId: authOf(res).userId, photoId });
    res.status(204).end();
  });

  return router;
}
