// flux-engine: Flux's engine (the fluxcd/pkg libraries kustomize-controller is built on), driven the way
// kustomize-controller drives them, as a reference for Ferry's differential tests. It is not Flux's controller:
// there is no reconcile loop, no source fetching, no SOPS decryption, no impersonation, no remote kubeconfig,
// no CEL health checks, no events. See kustomize-controller's internal/controller/kustomization_controller.go
// (generate, build, apply, checkHealth, prune), which the subcommands below follow step by step.
//
//	flux-engine kstatus < objects.json
//	flux-engine build --path DIR [--root DIR] [--kustomization FILE] [--substitute k=v ...] [--strategy S] [--strict]
//	flux-engine apply --kubeconfig K --namespace NS --name NAME --path DIR [build flags]
//	                  [--prune-inventory FILE] [--wait] [--timeout D] [--interval D] [--force]
//
// build prints the YAML (errors on stderr, exit 1). apply prints {changeSet, pruned, inventory, ready, message} as JSON:
// exit 1 when the build, apply or prune fails (the JSON then has what was applied), exit 0 with ready false when the
// wait times out. From the --kustomization file apply also honours spec.force and spec.commonMetadata; it does not
// do spec.healthChecks, healthCheckExprs, dependsOn, serviceAccountName, kubeConfig, decryption or deletionPolicy.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	fluxpolling "github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/engine"
	fluxstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	generator "github.com/fluxcd/pkg/kustomize"
	"github.com/fluxcd/pkg/runtime/statusreaders"
	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/normalize"
	ssautil "github.com/fluxcd/pkg/ssa/utils"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	upstreamstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"
)

// The names kustomize-controller uses: its --controller-name default is the field manager, and the owner labels
// are <group>/name and <group>/namespace.
const (
	fieldManager = "kustomize-controller"
	group        = "kustomize.toolkit.fluxcd.io"
)

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: flux-engine kstatus|build|apply [flags]"))
	}
	var err error
	switch os.Args[1] {
	case "kstatus":
		err = kstatusCommand(os.Stdin, os.Stdout)
	case "build":
		err = buildCommand(os.Args[2:])
	case "apply":
		err = applyCommand(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q: kstatus, build or apply", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "flux-engine:", err)
	os.Exit(1)
}

// ---- kstatus ----

type statusResult struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type kstatusOutput struct {
	// sigs.k8s.io/cli-utils pkg/kstatus/status.Compute (upstream kstatus).
	statusResult
	// github.com/fluxcd/cli-utils (Flux's fork, the one ssa and kustomize-controller use) status.Compute.
	Flux statusResult `json:"flux"`
	// What kustomize-controller's status poller computes for the object: its custom Job reader
	// (fluxcd/pkg/runtime/statusreaders) for batch/Job, Flux's status.Compute for every other kind.
	Controller statusResult `json:"controller"`
	Error      string       `json:"error,omitempty"`
}

func kstatusCommand(in io.Reader, out io.Writer) error {
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	// apimachinery's decoder, so integers are int64 as they are in objects read from the API server.
	var list []any
	if err := utiljson.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("stdin must be a JSON array of Kubernetes objects: %w", err)
	}
	objects := make([]map[string]any, 0, len(list))
	for i, item := range list {
		obj, ok := item.(map[string]any)
		if !ok {
			return fmt.Errorf("item %d of stdin is not a JSON object", i)
		}
		objects = append(objects, obj)
	}
	jobReader := statusreaders.NewCustomJobStatusReader(apimeta.NewDefaultRESTMapper(nil))
	results := make([]kstatusOutput, 0, len(objects))
	for _, raw := range objects {
		u := &unstructured.Unstructured{Object: raw}
		// A status that cannot be computed is Unknown with the error as its message, as kstatus' poller reports it.
		var result kstatusOutput
		var errs []string
		if r, err := upstreamstatus.Compute(u); err != nil {
			errs = append(errs, "upstream: "+err.Error())
			result.statusResult = statusResult{Status: "Unknown", Message: err.Error()}
		} else {
			result.statusResult = statusResult{Status: r.Status.String(), Message: r.Message}
		}
		if r, err := fluxstatus.Compute(u); err != nil {
			errs = append(errs, "flux: "+err.Error())
			result.Flux = statusResult{Status: "Unknown", Message: err.Error()}
		} else {
			result.Flux = statusResult{Status: r.Status.String(), Message: r.Message}
		}
		result.Controller = result.Flux
		if jobReader.Supports(u.GroupVersionKind().GroupKind()) {
			// ReadStatusForObject reads nothing from the cluster for a Job; this is the poller's own code path.
			rs, err := jobReader.ReadStatusForObject(context.Background(), nil, u)
			if err != nil {
				errs = append(errs, "controller: "+err.Error())
				result.Controller = statusResult{Status: "Unknown", Message: err.Error()}
			} else {
				result.Controller = statusResult{Status: rs.Status.String(), Message: rs.Message}
			}
		}
		result.Error = strings.Join(errs, "; ")
		results = append(results, result)
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(results)
}

// ---- build ----

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type buildFlags struct {
	path          string
	root          string
	kustomization string
	substitute    stringList
	strategy      string
	strict        bool
	noRemoteBases bool
}

func (b *buildFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.path, "path", "", "directory to build (spec.path inside --root)")
	fs.StringVar(&b.root, "root", "", "the artifact root that bounds the build (default: --path)")
	fs.StringVar(&b.kustomization, "kustomization", "", "a Flux Kustomization (YAML or JSON) whose spec drives the generator and postBuild")
	fs.Var(&b.substitute, "substitute", "postBuild.substitute entry k=v (repeatable)")
	fs.StringVar(&b.strategy, "strategy", "", "postBuild.substituteStrategy: WithVariables (default) or Always")
	fs.BoolVar(&b.strict, "strict", false, "kustomize-controller's --feature-gates=StrictPostBuildSubstitutions")
	fs.BoolVar(&b.noRemoteBases, "no-remote-bases", false, "kustomize-controller's --no-remote-bases")
}

// kustomization returns the Flux Kustomization object the generator and substitution read, from --kustomization
// with the flags laid over it.
func (b *buildFlags) kustomizationObject(name, namespace string) (unstructured.Unstructured, error) {
	obj := map[string]any{}
	if b.kustomization != "" {
		data, err := os.ReadFile(b.kustomization)
		if err != nil {
			return unstructured.Unstructured{}, err
		}
		if err := yaml.Unmarshal(data, &obj); err != nil {
			return unstructured.Unstructured{}, fmt.Errorf("%s: %w", b.kustomization, err)
		}
	}
	u := unstructured.Unstructured{Object: obj}
	u.SetAPIVersion(group + "/v1")
	u.SetKind("Kustomization")
	if name != "" {
		u.SetName(name)
	}
	if namespace != "" {
		u.SetNamespace(namespace)
	}
	if u.GetName() == "" {
		u.SetName("flux-engine")
	}
	if u.GetNamespace() == "" {
		u.SetNamespace("default")
	}
	if len(b.substitute) > 0 {
		vars, _, _ := unstructured.NestedStringMap(obj, "spec", "postBuild", "substitute")
		if vars == nil {
			vars = map[string]string{}
		}
		for _, kv := range b.substitute {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return u, fmt.Errorf("--substitute %q: want key=value", kv)
			}
			vars[k] = v
		}
		if err := unstructured.SetNestedStringMap(obj, vars, "spec", "postBuild", "substitute"); err != nil {
			return u, err
		}
	}
	if b.strategy != "" {
		if err := unstructured.SetNestedField(obj, b.strategy, "spec", "postBuild", "substituteStrategy"); err != nil {
			return u, err
		}
	}
	return u, nil
}

// build follows kustomize-controller's reconcile: copy the artifact to a temporary directory, generate
// kustomization.yaml from the Kustomization's spec there, SecureBuild it, check each resource, run postBuild
// substitution when spec.postBuild is set, and render YAML.
func (b *buildFlags) build(ctx context.Context, kubeClient client.Client, k unstructured.Unstructured) ([]byte, error) {
	if b.path == "" {
		return nil, errors.New("--path is required")
	}
	root := b.root
	if root == "" {
		root = b.path
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	absPath, err := filepath.Abs(b.path)
	if err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(absRoot, absPath)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil, fmt.Errorf("--path %s is not inside --root %s", b.path, root)
	}
	tmpDir, err := os.MkdirTemp("", "flux-engine-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmpDir)
	if err := os.CopyFS(tmpDir, os.DirFS(absRoot)); err != nil {
		return nil, fmt.Errorf("copying %s: %w", root, err)
	}
	dirPath := filepath.Join(tmpDir, rel)

	if _, err := generator.NewGenerator(tmpDir, k).WriteFile(dirPath); err != nil {
		return nil, err
	}
	m, err := generator.SecureBuild(tmpDir, dirPath, !b.noRemoteBases)
	if err != nil {
		return nil, fmt.Errorf("kustomize build failed: %w", err)
	}
	_, hasPostBuild, _ := unstructured.NestedMap(k.Object, "spec", "postBuild")
	strategy, _, _ := unstructured.NestedString(k.Object, "spec", "postBuild", "substituteStrategy")
	for _, res := range m.Resources() {
		if res.GetName() == "" || res.GetKind() == "" || res.GetApiVersion() == "" {
			return nil, fmt.Errorf("failed to decode Kubernetes apiVersion, kind and name from: %v", res.String())
		}
		if hasPostBuild {
			outRes, err := generator.SubstituteVariables(ctx, kubeClient, k, res,
				generator.SubstituteWithStrict(b.strict),
				generator.SubstituteWithAlways(strategy == "Always"))
			if err != nil {
				return nil, fmt.Errorf("post build failed for '%s/%s': %w", res.GetGvk(), res.GetName(), err)
			}
			if outRes != nil {
				if _, err := m.Replace(res); err != nil {
					return nil, err
				}
			}
		}
	}
	resources, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize build failed: %w", err)
	}
	return resources, nil
}

func buildCommand(args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	var b buildFlags
	b.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	k, err := b.kustomizationObject("", "")
	if err != nil {
		return err
	}
	if _, ok, _ := unstructured.NestedSlice(k.Object, "spec", "postBuild", "substituteFrom"); ok {
		return errors.New("build has no cluster: postBuild.substituteFrom needs apply")
	}
	out, err := b.build(context.Background(), nil, k)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}

// ---- apply ----

type changeSetEntry struct {
	ID      string `json:"id"`
	Subject string `json:"subject"`
	Version string `json:"version"`
	Action  string `json:"action"`
}

type inventoryEntry struct {
	ID      string `json:"id"`
	Version string `json:"v"`
}

type applyResult struct {
	ChangeSet []changeSetEntry `json:"changeSet"`
	Pruned    []changeSetEntry `json:"pruned"`
	// Flux's status.inventory.entries format.
	Inventory []inventoryEntry `json:"inventory"`
	Ready     bool             `json:"ready"`
	Message   string           `json:"message"`
}

func entries(cs *ssa.ChangeSet) []changeSetEntry {
	out := []changeSetEntry{}
	if cs == nil {
		return out
	}
	for _, e := range cs.Entries {
		out = append(out, changeSetEntry{ID: e.ObjMetadata.String(), Subject: e.Subject, Version: e.GroupVersion, Action: e.Action.String()})
	}
	return out
}

func readInventory(file string) ([]inventoryEntry, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var list []inventoryEntry
	if err := json.Unmarshal(data, &list); err == nil {
		return list, nil
	}
	var wrapped struct {
		Entries []inventoryEntry `json:"entries"`
	}
	if err := json.Unmarshal(data, &wrapped); err != nil {
		return nil, fmt.Errorf("%s: want a JSON list of {id, v} or {entries: [...]}: %w", file, err)
	}
	return wrapped.Entries, nil
}

func applyCommand(args []string) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	var b buildFlags
	b.register(fs)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file")
	namespace := fs.String("namespace", "", "the Kustomization's namespace (owner label)")
	name := fs.String("name", "", "the Kustomization's name (owner label)")
	pruneInventory := fs.String("prune-inventory", "", "previous inventory (JSON); objects in it that were not applied now are pruned")
	wait := fs.Bool("wait", false, "wait with kstatus until every applied object is Current (spec.wait)")
	timeout := fs.Duration("timeout", 5*time.Minute, "spec.timeout for apply and wait")
	interval := fs.Duration("interval", 5*time.Second, "poll interval of the wait (kustomize-controller uses 5s)")
	force := fs.Bool("force", false, "spec.force: recreate objects with immutable field changes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || *namespace == "" {
		return errors.New("--name and --namespace are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	config.QPS, config.Burst = 50, 300
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	httpClient, err := rest.HTTPClientFor(config)
	if err != nil {
		return err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(config, httpClient)
	if err != nil {
		return err
	}
	kubeClient, err := client.New(config, client.Options{Scheme: scheme, Mapper: mapper})
	if err != nil {
		return err
	}
	// getClientAndPoller: the custom Job reader first, then kstatus' defaults.
	poller := fluxpolling.NewStatusPoller(kubeClient, mapper, fluxpolling.Options{
		CustomStatusReaders: []engine.StatusReader{statusreaders.NewCustomJobStatusReader(mapper)},
	})

	k, err := b.kustomizationObject(*name, *namespace)
	if err != nil {
		return err
	}
	resources, err := b.build(ctx, kubeClient, k)
	if err != nil {
		return err
	}
	objects, err := ssautil.ReadObjects(bytes.NewReader(resources))
	if err != nil {
		return err
	}
	manager := ssa.NewResourceManager(kubeClient, poller, ssa.Owner{Field: fieldManager, Group: group})
	manager.SetOwnerLabels(objects, *name, *namespace)

	result := applyResult{ChangeSet: []changeSetEntry{}, Pruned: []changeSetEntry{}, Inventory: []inventoryEntry{}}
	specForce, _, _ := unstructured.NestedBool(k.Object, "spec", "force")
	commonLabels, _, _ := unstructured.NestedStringMap(k.Object, "spec", "commonMetadata", "labels")
	commonAnnotations, _, _ := unstructured.NestedStringMap(k.Object, "spec", "commonMetadata", "annotations")
	changeSet, err := apply(ctx, manager, objects, *force || specForce, commonLabels, commonAnnotations)
	result.ChangeSet = entries(changeSet)
	if err != nil {
		result.Message = err.Error()
		return printResult(result, err)
	}
	for _, e := range changeSet.Entries {
		result.Inventory = append(result.Inventory, inventoryEntry{ID: e.ObjMetadata.String(), Version: e.GroupVersion})
	}

	if *pruneInventory != "" {
		old, err := readInventory(*pruneInventory)
		if err != nil {
			return err
		}
		stale, err := diffInventory(old, result.Inventory)
		if err != nil {
			return err
		}
		if len(stale) > 0 {
			deleted, err := manager.DeleteAll(ctx, stale, ssa.DeleteOptions{
				PropagationPolicy: metav1.DeletePropagationBackground,
				Inclusions:        manager.GetOwnerLabels(*name, *namespace),
				Exclusions: map[string]string{
					group + "/prune":     "disabled",
					group + "/reconcile": "disabled",
					group + "/ssa":       "ignore",
				},
			})
			result.Pruned = entries(deleted)
			if err != nil {
				result.Message = err.Error()
				return printResult(result, err)
			}
		}
	}

	if *wait {
		// checkHealth: every applied object but the skipped ones; Jobs with a TTL may vanish once finished.
		toCheck := object.ObjMetadataSet{}
		for _, e := range changeSet.Entries {
			if e.Action != ssa.SkippedAction {
				toCheck = append(toCheck, e.ObjMetadata)
			}
		}
		started := time.Now()
		if err := manager.WaitForSetWithContext(ctx, toCheck, ssa.WaitOptions{
			Interval:    *interval,
			Timeout:     *timeout,
			JobsWithTTL: ssautil.ExtractJobsWithTTL(objects),
		}); err != nil {
			result.Message = fmt.Sprintf("health check failed after %s: %s", time.Since(started).String(), err)
			return printResult(result, nil)
		}
		result.Message = fmt.Sprintf("Health check passed in %s", time.Since(started).String())
	} else {
		result.Message = "Applied"
	}
	result.Ready = true
	return printResult(result, nil)
}

func printResult(result applyResult, err error) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if encErr := enc.Encode(result); encErr != nil {
		return encErr
	}
	return err
}

// apply is kustomize-controller's apply(): normalize, then ApplyAllStaged with its selectors and cleanup options.
func apply(ctx context.Context, manager *ssa.ResourceManager, objects []*unstructured.Unstructured, force bool,
	commonLabels, commonAnnotations map[string]string) (*ssa.ChangeSet, error) {
	if err := normalize.UnstructuredList(objects); err != nil {
		return nil, err
	}
	if commonLabels != nil || commonAnnotations != nil {
		ssautil.SetCommonMetadata(objects, commonLabels, commonAnnotations)
	}
	opts := ssa.DefaultApplyOptions()
	opts.Force = force
	opts.ExclusionSelector = map[string]string{
		group + "/reconcile": "disabled",
		group + "/ssa":       "ignore",
	}
	opts.IfNotPresentSelector = map[string]string{group + "/ssa": "ifnotpresent"}
	opts.ForceSelector = map[string]string{group + "/force": "enabled"}
	opts.Cleanup = ssa.ApplyCleanupOptions{
		Annotations: []string{
			corev1.LastAppliedConfigAnnotation,
			group + "/checksum",
			"fluxcd.io/sync-checksum",
		},
		Labels: []string{"fluxcd.io/sync-gc-mark"},
		FieldManagers: []ssa.FieldManager{
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationApply},
			{Name: "kubectl", OperationType: metav1.ManagedFieldsOperationUpdate},
			{Name: "before-first-apply", OperationType: metav1.ManagedFieldsOperationUpdate},
			{Name: fieldManager, OperationType: metav1.ManagedFieldsOperationUpdate},
		},
		Exclusions: map[string]string{group + "/ssa": "merge"},
	}
	resultSet := ssa.NewChangeSet()
	if len(objects) == 0 {
		return resultSet, nil
	}
	changeSet, err := manager.ApplyAllStaged(ctx, objects, opts)
	if changeSet != nil {
		resultSet.Append(changeSet.Entries)
	}
	return resultSet, err
}

// diffInventory is kustomize-controller's inventory.Diff: what the old inventory has and the new one does not.
func diffInventory(old, current []inventoryEntry) ([]*unstructured.Unstructured, error) {
	keep := map[string]bool{}
	for _, e := range current {
		keep[e.ID] = true
	}
	objects := []*unstructured.Unstructured{}
	for _, e := range old {
		if keep[e.ID] {
			continue
		}
		m, err := object.ParseObjMetadata(e.ID)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: m.GroupKind.Group, Kind: m.GroupKind.Kind, Version: e.Version})
		u.SetName(m.Name)
		u.SetNamespace(m.Namespace)
		objects = append(objects, u)
	}
	sort.Sort(ssa.SortableUnstructureds(objects))
	return objects, nil
}
