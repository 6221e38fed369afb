using System.Text.Json;
using System.Text.Json.Nodes;
using CoeffTune.Adapters;
using CoeffTune.Assets;
using CoeffTune.Checkpoints;
using CoeffTune.Data;
using CoeffTune.Methods;
using CoeffTune.Models;
using CoeffTune.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Training;

/// <summary>Everything one fine-tuning run needs: model, task, recipe, split sizes and trainer settings.</summary>
public sealed record FineTuneOptions
{
    /// <summary>"auto" (minilm for text, the Fashion-MNIST ViT for images), an asset name, or a checkpoint path.</summary>
    public string Model { get; init; } = "auto";
    public required string Task { get; init; }
    public string Method { get; init; } = "coeff+lora";
    public IReadOnlyDictionary<string, JsonObject>? MethodOptions { get; init; }
    public int TrainSize { get; init; } = 800;
    public int ValidationSize { get; init; } = 200;
    /// <summary>Test examples (null: the whole held-out test set).</summary>
    public int? TestSize { get; init; }
    public int MaxTokens { get; init; } = 128;
    /// <summary>Attention heads of a checkpoint file whose config.json does not give them (null: read from the checkpoint).</summary>
    public int? Heads { get; init; }
    /// <summary>Text models: pool token states this way instead of the model's own sentence pooling.</summary>
    public Pooling? Pooling { get; init; }
    public TrainOptions Train { get; init; } = new();
    public PretrainOptions Pretrain { get; init; } = new();
    public required string OutDir { get; init; }
    public bool Resume { get; init; }
    /// <summary>How to read a task given as a path (encoding, damaged images); null: the defaults.</summary>
    public PathTaskOptions? TaskOptions { get; init; }
    /// <summary>With <see cref="Resume"/>: continue even when settings differ from the checkpoint's.</summary>
    public bool AllowSettingChanges { get; init; }
    /// <summary>The checkpoint writer's fault-injection point (see <see cref="CheckpointStore.Boundary"/>).</summary>
    public Action<string>? CheckpointBoundary { get; init; }
}

/// <summary>A model ready for a task, its name for adapter files, and its family's preprocessing.</summary>
public sealed record LoadedModel(TransformerClassifier Model, string Name, IModelInputs Inputs, TextTokenizer? Tokenizer = null)
{
    /// <summary>How to batch a labelled set of the task for this model.</summary>
    public IBatchSource Source(ILabeledDataset data) => Inputs.Source(data);

    /// <summary>For text models, a line saying how many texts of each split are longer than the tokenizer keeps; else null.</summary>
    public string? TruncationSummary(params (string Split, ILabeledDataset Data)[] splits)
    {
        if (Tokenizer is null) return null;
        var parts = splits.Where(s => s.Data is TextDataset)
            .Select(s => $"{Tokenizer.CountTruncated(((TextDataset)s.Data).Texts)} of {s.Data.Count} {s.Split}");
        return $"texts longer than {Tokenizer.MaxLength} tokens, cut: {string.Join(", ", parts)}";
    }
}

/// <summary>The outcome of a run.</summary>
public sealed record FineTuneResult(string Task, string Model, string Recipe, TrainableReport Trainable, TrainResult Training,
    Evaluation Test, double Seconds, long PeakRssBytes, string AdapterDir, IReadOnlyList<string> Classes, string SplitPath, int MaxTokens);

/// <summary>One fine-tuning run from names to numbers: data, split, model, recipe, training, test, adapter.</summary>
public static class FineTune
{
    public const string MetricsFile = "metrics.jsonl";
    public const string SplitFile = "split.json";
    public const string AdapterFolder = "adapter";

    /// <summary>
    /// Runs <paramref name="o"/>: <paramref name="observer"/> watches the training, <paramref name="log"/> gets what
    /// the run says. Cancelling <paramref name="cancellation"/> stops the training as <see cref="Trainer{TBatch}.Fit"/> does
    /// (an <see cref="OperationCanceledException"/>, the run folder resumable).
    /// </summary>
    public static FineTuneResult Run(FineTuneOptions o, ITrainingObserver? observer = null, TextWriter? log = null, AssetCache? cache = null,
        CancellationToken cancellation = default)
    {
        log ??= TextWriter.Null;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // Everything is checked before anything in the run folder changes: the task, the split, the model, the recipe.
        var task = TaskCatalog.Load(o.Task, cache, log, o.TaskOptions);
        if (task.Classes.Count < 2)
            throw new InvalidDataException($"task {task.Name} has {task.Classes.Count} class{(task.Classes.Count == 1 ? $" ('{task.Classes[0]}')" : "es")}; a classifier needs at least two");
        using var folder = RunFolder.Acquire(o.OutDir, log);
        var splitPath = Path.Combine(o.OutDir, SplitFile);
        bool resumeSplit = o.Resume && File.Exists(splitPath);
        DataSplit split;
        if (resumeSplit)
        {
            split = DataSplit.Load(splitPath);
            split.CheckFits(task.TrainPool, task.Test);
        }
        else split = DataSplit.Create(task.TrainPool, task.Test, o.Train.Seed, o.TrainSize, o.ValidationSize, o.TestSize);
        ILabeledDataset train, val, test;
        if (task.Kind == TaskKind.Image) (train, val, test) = split.Apply(task.ImageTrain, task.ImageTest);
        else (train, val, test) = split.Apply(task.TextTrain, task.TextTest);
        log.WriteLine($"task {task.Name}: {task.Classes.Count} classes; train {train.Count}, validation {val.Count}, test {test.Count}");

        torch.manual_seed(o.Train.Seed);
        var loaded = LoadModel(o.Model, task, o.MaxTokens, o.Pretrain, cache, log, o.Pooling, o.Heads);
        torch.manual_seed(o.Train.Seed + 1);
        var peft = PeftModel.Wrap(loaded.Model, o.Method, o.MethodOptions);
        var report = peft.Report();
        log.WriteLine($"{loaded.Name} + {peft.Recipe}: {report}");
        if (loaded.TruncationSummary(("train", train), ("validation", val), ("test", test)) is { } cut) log.WriteLine(cut);
        if (!resumeSplit) split.Save(splitPath);

        var metricsPath = Path.Combine(o.OutDir, MetricsFile);
        var writer = new MetricsWriter(metricsPath, observer);
        var trainer = new Trainer(peft, o.Train, writer)
        {
            RunSettings = new JsonObject
            {
                ["task"] = task.Name, ["model"] = loaded.Name, ["train_size"] = o.TrainSize, ["validation_size"] = o.ValidationSize,
                ["test_size"] = o.TestSize, ["max_tokens"] = task.Kind == TaskKind.Text ? o.MaxTokens : null,
                ["pooling"] = loaded.Model.PoolingName,
            },
            AllowSettingChanges = o.AllowSettingChanges,
            CheckpointBoundary = o.CheckpointBoundary,
            Log = log,
        };
        var result = trainer.Fit(loaded.Source(train), loaded.Source(val), o.OutDir, o.Resume, cancellation);
        var device = torch.device(o.Train.Device);
        var testEval = Trainer.Evaluate(peft.Classifier, loaded.Source(test), o.Train.BatchSize, device);
        var adapterDir = Path.Combine(o.OutDir, AdapterFolder);
        AdapterFile.Save(peft, adapterDir, loaded.Name, task.Classes);
        var final = new FineTuneResult(task.Name, loaded.Name, peft.Recipe, report, result, testEval, clock.Elapsed.TotalSeconds,
            ProcessMemory.PeakBytes(), adapterDir, task.Classes, splitPath, o.MaxTokens);
        writer.WriteFinal(final);
        return final;
    }

    /// <summary>Resolves a model name or path for a task, with a fresh head of the task's classes.</summary>
    public static LoadedModel LoadModel(string model, TaskData task, int maxTokens = 128, PretrainOptions? pretrain = null,
        AssetCache? cache = null, TextWriter? log = null, Pooling? pooling = null, int? heads = null)
    {
        var family = ModelFamilies.ForTask(task.Kind);
        // The ViT pretrained here is recorded under its cache name, which says how it was pretrained.
        var name = model switch
        {
            "auto" when task.Kind == TaskKind.Text => "minilm",
            "auto" or "vit-fmnist" when task.Kind == TaskKind.Image => (pretrain ?? new()).CacheName,
            _ => model,
        };
        var loaded = LoadBase(name, family.Name, task.Classes.Count, maxTokens, pretrain, cache, log, pooling, heads: heads);
        if (loaded.Model is BertClassifier bert)
            log?.WriteLine($"{name}: {bert.PoolingName} pooling{(pooling is null ? " (the model's own)" : " (chosen for this run)")}");
        try { loaded.Inputs.Check(task); }
        catch (ArgumentException e) { throw new ArgumentException($"model '{model}': {e.Message}", nameof(model), e); }
        return new LoadedModel(loaded.Model, name, loaded.Inputs, loaded.Tokenizer);
    }

    /// <summary>
    /// The one place a base model is built from its name, by its family (<see cref="ModelFamily.LoadClassifier"/>):
    /// a BERT-family asset or file ("bert"), or the ViT pretrained here ("vit-fmnist", or a cache name such as
    /// "vit-fmnist-2000x1") or a ViT file ("vit"); with a fresh head of <paramref name="classes"/> outputs and the
    /// family's preprocessing. <paramref name="heads"/> gives the attention heads of a checkpoint file that does not say them.
    /// </summary>
    public static BaseModel LoadBase(string name, string architecture, int classes,
        int maxTokens = 128, PretrainOptions? pretrain = null, AssetCache? cache = null, TextWriter? log = null, Pooling? pooling = null,
        bool mayPretrain = true, int? heads = null) =>
        ModelFamilies.Get(architecture).Load(new BaseModelRequest(name, classes, maxTokens, pretrain, cache, log, pooling, mayPretrain, heads));

    /// <summary>Writes metrics.jsonl (one object per evaluation, the final result last) and passes events on.</summary>
    private sealed class MetricsWriter(string path, ITrainingObserver? inner) : ITrainingObserver
    {
        private readonly List<string> lines = new();

        public void OnStart(int totalSteps, int stepsPerEpoch, int startStep) => inner?.OnStart(totalSteps, stepsPerEpoch, startStep);
        public void OnStep(int step, int epoch, double loss, double examplesPerSecond) => inner?.OnStep(step, epoch, loss, examplesPerSecond);

        public void OnEvaluation(EpochMetrics m, bool best)
        {
            lines.Add(JsonSerializer.Serialize(new
            {
                epoch = m.Epoch, step = m.Step, train_loss = m.TrainLoss, val_accuracy = m.Validation.Accuracy, val_loss = m.Validation.Loss,
                lr = m.LearningRate, examples_per_s = m.ExamplesPerSecond, seconds = m.Seconds, best,
            }));
            Flush();
            inner?.OnEvaluation(m, best);
        }

        public void WriteFinal(FineTuneResult r)
        {
            // On resume the evaluations before the checkpoint come from the trainer's history.
            lines.Clear();
            foreach (var m in r.Training.History)
                lines.Add(JsonSerializer.Serialize(new
                {
                    epoch = m.Epoch, step = m.Step, train_loss = m.TrainLoss, val_accuracy = m.Validation.Accuracy, val_loss = m.Validation.Loss,
                    lr = m.LearningRate, examples_per_s = m.ExamplesPerSecond, seconds = m.Seconds, best = m.Epoch == r.Training.BestEpoch,
                }));
            lines.Add(JsonSerializer.Serialize(new
            {
                final = true, task = r.Task, model = r.Model, recipe = r.Recipe, max_tokens = r.MaxTokens, test_accuracy = r.Test.Accuracy, test_loss = r.Test.Loss,
                best_val_accuracy = r.Training.BestValidation.Accuracy, best_epoch = r.Training.BestEpoch, trainable = r.Trainable.Total,
                base_parameters = r.Trainable.BaseParameters, steps = r.Training.Steps, seconds = r.Seconds, peak_rss_mb = r.PeakRssBytes / 1048576.0,
            }));
            Flush();
        }

        private void Flush() => IO.AtomicFile.WriteAllText(path, string.Join('\n', lines) + '\n');
    }
}
