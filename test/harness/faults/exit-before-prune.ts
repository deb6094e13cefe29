// A fault for crash-consistency tests, loaded into the controller with `node --import` (never part of Ferry): the
// process dies the moment a prune is about to delete objects of namespace FERRY_TEST_EXIT_BEFORE_PRUNE, that is
// after the new revision was applied and before the inventory and status that record it are written.
import { Applier } from "../../../src/apply/apply.ts";

const namespace = process.env.FERRY_TEST_EXIT_BEFORE_PRUNE;
const deleteObjects = Applier.prototype.delete;

Applier.prototype.delete = function (this: Applier, ...args: Parameters<Applier["delete"]>) {
  if (namespace && args[0].some((ref) => ref.namespace === namespace)) {
    process.stderr.write(`test fault: exiting before pruning in ${namespace}\n`);
    process.exit(137);
  }
  return deleteObjects.apply(this, args);
};
