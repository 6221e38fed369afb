using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using CoeffTune.Methods;
using CoeffTune.Models;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace CoeffTune.Training;

/// <summary>
/// A model on a set: the objective's selection score (classification: accuracy), its mean loss, the number of
/// examples, and any further metrics the objective reports.
/// </summary>
public sealed record Evaluation(double Accuracy, double Loss, int Examples)
{
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();
}

/// <summary>One evaluation during training, as written to metrics.jsonl.</summary>
public sealed record EpochMetrics(int Epoch, int Step, double TrainLoss, Evaluation Validation, double LearningRate, double ExamplesPerSecond, double Seconds);

/// <summary>The loss became NaN or infinite; training stopped.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);

/// <summary>The outcome of a run: the history, and the best validation result (whose weights the model holds).</summary>
public sealed record TrainResult(IReadOnlyList<EpochMetrics> History, Evaluation BestValidation, int BestEpoch, int Steps, double Seconds)
{
    /// <summary>
    /// Writes the history as JSON lines, one per evaluation, with the objective's own metrics (the generative runs'
    /// metrics.jsonl; classification runs stream theirs as they go).
    /// </summary>
    public void WriteHistory(string path)
    {
        var lines = History.Select(m => new JsonObject
        {
            ["epoch"] = m.Epoch, ["step"] = m.Step, ["train_loss"] = m.TrainLoss, ["val_loss"] = m.Validation.Loss,
            ["val_metrics"] = JsonSerializer.SerializeToNode(m.Validation.Metrics), ["lr"] = m.LearningRate,
            ["examples_per_s"] = m.ExamplesPerSecond, ["seconds"] = m.Seconds, ["best"] = m.Epoch == BestEpoch,
        }.ToJsonString());
        IO.AtomicFile.WriteAllText(path, string.Join('\n', lines) + '\n');
    }
}

/// <summary>
/// The one training loop: AdamW over the recipe's parameter groups, linear warmup then cosine decay,
/// gradient clipping, evaluation every epoch keeping the best weights, atomic checkpoints that resume
/// exactly (data order and dropout depend only on the seed and the step), a dispose scope per step.
/// </summary>
public class Trainer<TBatch>(PeftModel peft, ITrainingObjective<TBatch> objective, TrainOptions options, ITrainingObserver? observer = null)
    where TBatch : IDisposable
{
    public const string CheckpointFolder = "checkpoint";
    private readonly TrainOptions o = options.Validate();
    private readonly ITrainingObserver observer = observer ?? new NullObserver();
    private sealed class NullObserver : ITrainingObserver { }

    /// <summary>What else decides the run's result (task, model, data sizes, ...), recorded in every checkpoint and compared on resume.</summary>
    public JsonObject? RunSettings { get; init; }
    /// <summary>Resume even when the settings differ from the checkpoint's (the differences are logged).</summary>
    public bool AllowSettingChanges { get; init; }
    /// <summary>The checkpoint writer's fault-injection point (see <see cref="CheckpointStore.Boundary"/>).</summary>
    public Action<string>? CheckpointBoundary { get; init; }
    /// <summary>Where resuming says what it found.</summary>
    public TextWriter? Log { get; init; }

    /// <summary>Every setting that changes the result of a run: the caller's, the recipe with its methods' options, and the trainer's.</summary>
    public JsonObject Settings(int trainCount, int validationCount)
    {
        var s = RunSettings?.DeepClone() as JsonObject ?? new JsonObject();
        var methods = new JsonObject();
        foreach (var m in peft.Methods) methods[m.Config.Method] = m.Config.ToJson();
        s["recipe"] = peft.Recipe;
        s["methods"] = methods;
        s["seed"] = o.Seed;
        s["epochs"] = o.Epochs;
        s["max_steps"] = o.MaxSteps;
        s["batch_size"] = o.BatchSize;
        s["lr"] = o.LearningRate;
        s["weight_decay"] = o.WeightDecay;
        s["warmup_fraction"] = o.WarmupFraction;
        s["clip_norm"] = o.ClipNorm;
        s["train_examples"] = trainCount;
        s["validation_examples"] = validationCount;
        return s;
    }

    /// <summary>
    /// Trains on <paramref name="train"/>, evaluating on <paramref name="validation"/> at every epoch's end, with
    /// checkpoints in <paramref name="outDir"/>; <paramref name="resume"/> continues from its newest complete
    /// checkpoint. Cancelling <paramref name="cancellation"/> (from an observer's <see cref="ITrainingObserver.OnStep"/>,
    /// say) stops the run after the step in progress and any checkpoint that step writes, with an
    /// <see cref="OperationCanceledException"/>: the run then stands as if the process had been killed there, and
    /// resuming redoes the steps since its last checkpoint.
    /// </summary>
    public TrainResult Fit(IBatchSource<TBatch> train, IBatchSource<TBatch> validation, string outDir, bool resume = false, CancellationToken cancellation = default)
    {
        cancellation.ThrowIfCancellationRequested();
        var device = torch.device(o.Device);
        var model = peft.Model;
        model.to(device);
        var groups = peft.ParameterGroups(o.LearningRate, o.WeightDecay);
        using var opt = optim.AdamW(groups.Select(g => new AdamW.ParamGroup(g.Parameters, lr: g.LearningRate, weight_decay: g.WeightDecay)));
        var baseLrs = groups.Select(g => g.LearningRate).ToArray();
        var trainable = groups.SelectMany(g => g.Parameters).ToList();

        int stepsPerEpoch = (train.Count + o.BatchSize - 1) / o.BatchSize;
        int total = Math.Min(o.MaxSteps ?? int.MaxValue, stepsPerEpoch * o.Epochs);
        var history = new List<EpochMetrics>();
        int step = 0;
        Evaluation best = new(-1, double.MaxValue, 0);
        int bestEpoch = 0;
        Dictionary<string, Tensor>? bestWeights = null;
        var store = new CheckpointStore(Path.Combine(outDir, CheckpointFolder)) { Boundary = CheckpointBoundary };
        var settings = Settings(train.Count, validation.Count);
        Directory.CreateDirectory(outDir);
        store.CleanLeftovers();
        if (resume && store.Any())
            (step, best, bestEpoch, history, bestWeights) = LoadCheckpoint(store, settings, opt);
        else if (Directory.Exists(store.Root))
            Directory.Delete(store.Root, recursive: true);      // a new run replaces the folder's earlier checkpoints

        observer.OnStart(total, stepsPerEpoch, step);
        var clock = Stopwatch.StartNew();
        double elapsedBefore = history.Count > 0 ? history[^1].Seconds : 0;
        double lossSum = 0; int lossCount = 0;
        while (step < total)
        {
            int epoch = step / stepsPerEpoch, inEpoch = step % stepsPerEpoch;
            var order = Permutation(train.Count, o.Seed, epoch);
            model.train();
            var epochClock = Stopwatch.StartNew();
            int seen = 0;
            for (int b = inEpoch; b < stepsPerEpoch && step < total; b++)
            {
                using var scope = NewDisposeScope();
                torch.manual_seed(o.Seed * 1_000_003L + step);        // dropout depends on (seed, step) only
                var idx = order.Skip(b * o.BatchSize).Take(o.BatchSize).ToArray();
                using var batch = train.MakeBatch(idx, device);
                double factor = o.Schedule(step, total);
                int gi = 0;
                foreach (var pg in opt.ParamGroups) pg.LearningRate = baseLrs[gi++] * factor;
                opt.zero_grad();
                var loss = objective.Loss(model, batch);
                double lossValue = loss.ToDouble();
                if (!double.IsFinite(lossValue))
                    throw new TrainingDivergedException($"loss became {lossValue} at epoch {epoch + 1}, step {step + 1} (learning rate {o.LearningRate * factor:G3}); lower the learning rate or check the data");
                loss.backward();
                if (o.ClipNorm > 0) nn.utils.clip_grad_norm_(trainable, o.ClipNorm);
                opt.step();
                step++;
                seen += idx.Length;
                lossSum += lossValue; lossCount++;
                observer.OnStep(step, epoch + 1, lossValue, seen / Math.Max(1e-9, epochClock.Elapsed.TotalSeconds));
                bool epochEnd = b == stepsPerEpoch - 1 || step == total;
                if (epochEnd)
                {
                    var val = objective.Evaluate(model, validation, o.BatchSize, device);
                    var m = new EpochMetrics(epoch + 1, step, lossSum / Math.Max(1, lossCount), val, o.LearningRate * factor,
                        seen / Math.Max(1e-9, epochClock.Elapsed.TotalSeconds), elapsedBefore + clock.Elapsed.TotalSeconds);
                    lossSum = 0; lossCount = 0;
                    history.Add(m);
                    bool isBest = objective.IsBetter(val, best);
                    if (isBest)
                    {
                        best = val; bestEpoch = epoch + 1;
                        DisposeAll(bestWeights);
                        bestWeights = Snapshot(peft);
                    }
                    observer.OnEvaluation(m, isBest);
                    model.train();
                }
                if (epochEnd || step % o.CheckpointEvery == 0)
                    SaveCheckpoint(store, settings, opt, step, best, bestEpoch, history, bestWeights);
                // Cancelled with steps left to do; a run whose last step is done finishes as usual.
                if (step < total && cancellation.IsCancellationRequested)
                {
                    DisposeAll(bestWeights);
                    throw new OperationCanceledException($"training was cancelled after step {step} of {total}; resuming continues from the last checkpoint", cancellation);
                }
            }
        }
        if (bestWeights is not null) Restore(peft, bestWeights);
        DisposeAll(bestWeights);
        model.eval();
        return new TrainResult(history, best, bestEpoch, step, elapsedBefore + clock.Elapsed.TotalSeconds);
    }

    /// <summary>A shuffled order of the training set for one epoch, from the seed and the epoch alone.</summary>
    public static int[] Permutation(int n, int seed, int epoch)
    {
        var rng = new Random(unchecked(seed * 7919 + epoch * 104729 + 17));
        var p = Enumerable.Range(0, n).ToArray();
        rng.Shuffle(p);
        return p;
    }

    private static Dictionary<string, Tensor> Snapshot(PeftModel peft)
    {
        var state = peft.Model.state_dict();
        return peft.TrainableNames.ToDictionary(n => n, n => state[n].detach().cpu().clone().DetachFromDisposeScope());
    }

    private static void Restore(PeftModel peft, Dictionary<string, Tensor> weights)
    {
        var state = peft.Model.state_dict();
        using var _ = no_grad();
        foreach (var (n, t) in weights) state[n].copy_(t);
    }

    private static void DisposeAll(Dictionary<string, Tensor>? d)
    {
        if (d is null) return;
        foreach (var t in d.Values) t.Dispose();
    }

    // A checkpoint holds the trainable tensors, the best ones, the optimiser state and a JSON summary; the
    // store writes them as one unit (a folder renamed into place after its manifest).
    private void SaveCheckpoint(CheckpointStore store, JsonObject settings, AdamW opt, int step, Evaluation best, int bestEpoch,
        List<EpochMetrics> history, Dictionary<string, Tensor>? bestWeights)
    {
        var state = new JsonObject
        {
            ["step"] = step, ["best_epoch"] = bestEpoch, ["best_accuracy"] = best.Accuracy, ["best_loss"] = best.Loss,
            ["history"] = JsonSerializer.SerializeToNode(history),
        };
        var files = new List<(string, Action<string>)>
        {
            ("trainable.safetensors", path =>
            {
                var current = Snapshot(peft);
                Safetensors.SaveStateDict(path, current);
                DisposeAll(current);
            }),
        };
        if (bestWeights is not null) files.Add(("best.safetensors", path => Safetensors.SaveStateDict(path, bestWeights)));
        files.Add(("optimizer.bin", path => opt.save_state_dict(path)));
        files.Add(("state.json", path => File.WriteAllText(path, state.ToJsonString())));
        store.Save(step, files, settings);
    }

    private (int, Evaluation, int, List<EpochMetrics>, Dictionary<string, Tensor>?) LoadCheckpoint(CheckpointStore store, JsonObject settings, AdamW opt)
    {
        var entry = store.Latest(Log);
        var changes = CheckpointStore.Differences(entry.Settings, settings);
        if (changes.Count > 0 && !AllowSettingChanges)
            throw new InvalidDataException($"{entry.Folder}: resuming would change the run: {string.Join(", ", changes)}; " +
                "run with the checkpoint's settings, or allow the changes explicitly");
        foreach (var c in changes) Log?.WriteLine($"resuming with a changed setting: {c}");
        var statePath = Path.Combine(entry.Folder, "state.json");
        JsonObject s;
        try { s = (JsonObject)JsonNode.Parse(File.ReadAllText(statePath))!; }
        catch (Exception e) { throw new InvalidDataException($"{statePath}: unreadable checkpoint state ({e.Message})"); }
        var weights = CoeffTune.IO.SafetensorsFile.Load(Path.Combine(entry.Folder, "trainable.safetensors"));
        Restore(peft, weights);
        DisposeAll(weights);
        opt.load_state_dict(Path.Combine(entry.Folder, "optimizer.bin"));
        var bestPath = Path.Combine(entry.Folder, "best.safetensors");
        var best = File.Exists(bestPath) ? CoeffTune.IO.SafetensorsFile.Load(bestPath) : null;
        var history = s["history"].Deserialize<List<EpochMetrics>>() ?? new();
        return (s["step"]!.GetValue<int>(), new Evaluation(s["best_accuracy"]!.GetValue<double>(), s["best_loss"]!.GetValue<double>(), 0),
            s["best_epoch"]!.GetValue<int>(), history, best);
    }
}

/// <summary>The trainer of a classifier: <see cref="Trainer{TBatch}"/> with the <see cref="ClassificationObjective"/>.</summary>
public sealed class Trainer(PeftModel peft, TrainOptions options, ITrainingObserver? observer = null)
    : Trainer<Batch>(peft, new ClassificationObjective(), options, observer)
{
    /// <summary>Accuracy and mean cross-entropy over a whole set, in evaluation mode without gradients.</summary>
    public static Evaluation Evaluate(TransformerClassifier model, IBatchSource set, int batchSize, Device device) =>
        new ClassificationObjective().Evaluate(model, set, batchSize, device);
}
