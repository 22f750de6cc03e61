import type { FastifyPluginAsync } from 'fastify';
import { ApiError } from '../../errors.js';

/** The running policy and its rollback (the admin scope guards them: see access.ts). */
export const adminRoutes: FastifyPluginAsync = async (app) => {
  const { services } = app;
  app.get('/admin/policy', async () => {
    const current = services.policies.current();
    return {
      policy_version: current.version,
      policy_kind: current.kind,
      history: services.policies.history().map((p) => p.version),
      calibration: current.calibration
        ? {
            date: current.calibration.date,
            traces_sha256: current.calibration.traces.sha256,
            target: current.calibration.target,
            classes: Object.fromEntries(
              Object.entries(current.calibration.classes).map(([name, c]) => [
                name,
                { quality: c.quality, cost_per_correct: c.cost_per_correct, thresholds: c.thresholds },
              ]),
            ),
          }
        : null,
    };
  });

  app.post('/admin/policy/rollback', async () => {
    const change = services.policies.rollback();
    if (!change.ok) throw new ApiError('MR_ERR_NO_PREVIOUS_POLICY', change.error.message);
    return { policy_version: change.policy.version, previous_version: change.previous_version ?? null };
  });

  // The config file read again: tiers, probe bundle and policy swapped in together, or a 422 and
  // nothing changed (the reason is logged too).
  app.post('/admin/reload', async () => services.reload('admin'));

  app.get('/admin/tiers', async () => ({
    tiers: services.routeTiers(),
    draining: services.pool.draining(),
    probes: services.config.probes.path,
  }));

  app.get('/admin/learning', async () => services.learner?.status() ?? { online: false });

  app.post('/admin/learning/reset', async () => {
    const { learner } = services;
    if (!learner)
      throw new ApiError('MR_ERR_LEARNING_OFF', 'online learning is off (learning.online: false)');
    learner.reset();
    services.telemetry.updateLearningGauges();
    return learner.status();
  });
};
