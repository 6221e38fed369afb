using CoeffTune.Methods;
using CoeffTune.Training;
using TorchSharp;
using static TorchSharp.torch;
using static CoeffTune.Tests.TestUtil;

namespace CoeffTune.Tests.Training;

public class TrainerTests : IDisposable
{
    private readonly TempDir temp = new();

    private string dir => temp.Path;

    public void Dispose() => temp.Dispose();

    /// <summary>8x8 images whose class (0..2) is the bright band: top, middle or bottom rows.</summary>
    internal static TensorBatchSource Bands(int n, int seed)
    {
        var gen = new Generator((ulong)seed);
        var labels = randint(0, 3, new long[] { n }, generator: gen);
        var images = rand(new long[] { n, 1, 8, 8 }, generator: gen) * 0.5;
        for (int i = 0; i < n; i++)
        {
            long c = labels[i].ToInt64();
            images[i, 0, TensorIndex.Slice(c * 3, c * 3 + 2)] += 1.0;
        }
        return new TensorBatchSource(images, labels);
    }

    internal static TrainOptions Options => new() { Epochs = 4, BatchSize = 16, LearningRate = 3e-3, Seed = 5, CheckpointEvery = 7 };

    /// <summary>Cancels the run once <paramref name="steps"/> steps are done, as a user stopping it would; pass <see cref="Token"/> to Fit.</summary>
    internal sealed class StopAfter(int steps) : ITrainingObserver
    {
        private readonly CancellationTokenSource source = new();
        public CancellationToken Token => source.Token;
        public int LastStep { get; private set; }

        public void OnStep(int step, int epoch, double loss, double examplesPerSecond)
        {
            LastStep = step;
            if (step == steps) source.Cancel();
        }
    }

    /// <summary>Trains until <paramref name="steps"/> steps are done and the run is cancelled; returns the steps that ran.</summary>
    internal static int StopAfterSteps(PeftModel peft, TrainOptions options, int steps, IBatchSource train, IBatchSource validation, string dir)
    {
        var stop = new StopAfter(steps);
        var e = Assert.Throws<OperationCanceledException>(() => new Trainer(peft, options, stop).Fit(train, validation, dir, cancellation: stop.Token));
        Assert.Contains($"cancelled after step {steps} of", e.Message);
        return stop.LastStep;
    }

    [Fact]
    public void A_short_run_brings_the_loss_down_and_keeps_the_best_epoch()
    {
        using var scope = NewDisposeScope();
        var peft = PeftModel.Wrap(TinyModels.Vit(), "coeff+lora");
        var trainer = new Trainer(peft, Options with { Epochs = 8, LearningRate = 1e-2 });
        var result = trainer.Fit(Bands(160, 1), Bands(64, 2), dir);
        Assert.Equal(8, result.History.Count);
        Assert.True(result.History[^1].TrainLoss < 0.5 * result.History[0].TrainLoss,
            $"loss {result.History[0].TrainLoss:F3} -> {result.History[^1].TrainLoss:F3}");
        Assert.True(result.BestValidation.Accuracy >= 0.9, $"validation accuracy {result.BestValidation.Accuracy}");
        // The model holds the best epoch's weights at the end.
        var again = Trainer.Evaluate(peft.Classifier, Bands(64, 2), 16, CPU);
        Assert.Equal(result.BestValidation.Accuracy, again.Accuracy);
    }

    /// <summary>A validation set graded with its true labels on the first pass and with wrong ones (shifted by one) after.</summary>
    private sealed class WorseAfterFirstPass(TensorBatchSource data) : IBatchSource
    {
        private int passes;
        public int Count => data.Count;
        public CoeffTune.Models.Batch MakeBatch(int[] indices, Device device)
        {
            if (indices[0] == 0) passes++;
            var b = data.MakeBatch(indices, device);
            return passes == 1 ? b : b with { Labels = (b.Labels! + 1).remainder(3) };
        }
    }

    /// <summary>Snapshots the trainable weights at every evaluation.</summary>
    private sealed class WeightsPerEpoch(PeftModel peft) : ITrainingObserver
    {
        public List<Dictionary<string, Tensor>> Snapshots { get; } = new();
        public void OnEvaluation(EpochMetrics metrics, bool best)
        {
            var state = peft.Model.state_dict();
            // The trainer evaluates inside a per-step dispose scope: the copies are moved out of it.
            Snapshots.Add(peft.TrainableNames.ToDictionary(n => n, n => state[n].detach().clone().DetachFromDisposeScope()));
        }
    }

    [Fact]
    public void The_best_epoch_is_kept_when_it_is_not_the_last()
    {
        using var scope = NewDisposeScope();
        var peft = PeftModel.Wrap(TinyModels.Vit(), "coeff+lora");
        var epochs = new WeightsPerEpoch(peft);
        var result = new Trainer(peft, Options with { Epochs = 4, LearningRate = 1e-2 }, epochs).Fit(Bands(160, 1), new WorseAfterFirstPass(Bands(64, 2)), dir);
        Assert.Equal(1, result.BestEpoch);
        Assert.True(result.BestValidation.Accuracy > result.History[^1].Validation.Accuracy + 0.3,
            $"best {result.BestValidation.Accuracy} vs last {result.History[^1].Validation.Accuracy}");
        // The model ends with the first epoch's weights, not the last epoch's.
        var final = peft.Model.state_dict();
        foreach (var name in peft.TrainableNames)
        {
            Assert.True(MaxAbsDiff(final[name], epochs.Snapshots[0][name]) == 0.0, $"{name} is not the best epoch's");
            Assert.True(MaxAbsDiff(final[name], epochs.Snapshots[^1][name]) > 0.0, $"{name} equals the last epoch's");
        }
    }

    /// <summary>
    /// Adam's first step moves every parameter whose gradient is non-zero by its learning rate times the sign of
    /// the gradient (m / sqrt(v) = g / |g| after bias correction; eps 1e-8 is negligible). One trainer step
    /// without warmup or weight decay therefore shows each parameter group's own learning rate being applied.
    /// </summary>
    [Fact]
    public void Each_parameter_group_steps_by_its_own_learning_rate()
    {
        using var scope = NewDisposeScope();
        var peft = PeftModel.Wrap(TinyModels.Vit(), new CoeffTune.Methods.Coeff.CoeffConfig(learningRate: 0.02), new CoeffTune.Methods.Lora.LoraConfig(learningRate: 0.005));
        var state = peft.Model.state_dict();
        var before = peft.TrainableNames.ToDictionary(n => n, n => state[n].detach().clone());
        new Trainer(peft, Options with { MaxSteps = 1, WarmupFraction = 0, WeightDecay = 0, LearningRate = 0.001 }).Fit(Bands(16, 1), Bands(16, 2), dir);
        foreach (var name in peft.TrainableNames)
        {
            double expected = name.EndsWith("alpha") ? 0.02 : name.Contains("lora_") ? 0.005 : 0.001;
            var moved = (state[name] - before[name]).abs();
            var changed = moved.gt(0);
            if (!changed.any().ToBoolean()) continue;   // lora_A has no gradient on the first step (B starts at zero)
            // Entries with a gradient near Adam's eps move a little less; the typical one moves by the rate itself.
            double max = moved.max().ToDouble(), median = moved.masked_select(changed).median().ToDouble();
            Assert.True(max <= expected * (1 + 1e-4) && Math.Abs(median - expected) < 0.01 * expected,
                $"{name} moved by a median {median:G4} and at most {max:G4}; its group's learning rate is {expected}");
        }
    }

    /// <summary>
    /// The schedule reaches the optimiser: with 4 steps and half of them warmup, the first step's rate is half
    /// the base rate, and Adam's first step moves each parameter by exactly that rate.
    /// </summary>
    [Fact]
    public void The_warmup_schedule_sets_the_optimisers_rate()
    {
        using var scope = NewDisposeScope();
        var peft = PeftModel.Wrap(TinyModels.Vit(), "coeff");
        var state = peft.Model.state_dict();
        var alpha = peft.TrainableNames.First(n => n.EndsWith("alpha"));
        var before = state[alpha].detach().clone();
        Assert.Equal(1, StopAfterSteps(peft, Options with { MaxSteps = 4, WarmupFraction = 0.5, WeightDecay = 0, LearningRate = 0.01 }, 1, Bands(64, 1), Bands(16, 2), dir));
        var moved = (state[alpha] - before).abs();
        double median = moved.masked_select(moved.gt(0)).median().ToDouble();
        Assert.True(Math.Abs(median - 0.005) < 0.01 * 0.005, $"first step moved alpha by {median:G4}; warmup should give 0.005");
    }

    /// <summary>
    /// Clipping reaches the gradients the optimiser uses: they are left in place after the last step, and with a
    /// tiny limit their total norm is that limit (unclipped, this model's gradients have a norm of order 0.1 to 1).
    /// </summary>
    [Fact]
    public void Gradients_are_clipped_to_the_limit()
    {
        using var scope = NewDisposeScope();
        var peft = PeftModel.Wrap(TinyModels.Vit(), "coeff+lora");
        new Trainer(peft, Options with { MaxSteps = 3, ClipNorm = 1e-3 }).Fit(Bands(64, 1), Bands(16, 2), dir);
        var grads = peft.Model.parameters().Where(p => p.requires_grad && p.grad is not null).Select(p => p.grad!).ToList();
        double norm = Math.Sqrt(grads.Sum(g => g.pow(2).sum().ToDouble()));
        Assert.InRange(norm, 0.999e-3, 1.001e-3);
    }

    [Fact]
    public void Stopping_mid_epoch_and_resuming_ends_exactly_where_an_uninterrupted_run_ends()
    {
        using var scope = NewDisposeScope();
        var (train, val) = (Bands(100, 3), Bands(32, 4));     // 7 steps an epoch, 28 in all
        var full = PeftModel.Wrap(TinyModels.Vit(), "coeff+dora");
        new Trainer(full, Options).Fit(train, val, Path.Combine(dir, "a"));

        var first = PeftModel.Wrap(TinyModels.Vit(), "coeff+dora");
        Assert.Equal(17, StopAfterSteps(first, Options, 17, train, val, Path.Combine(dir, "b")));
        // The last checkpoint was at step 14: steps 15-17 are redone.
        Assert.Equal("step-00000014", Path.GetFileName(new CheckpointStore(Path.Combine(dir, "b", Trainer.CheckpointFolder)).Latest().Folder));
        var resumedModel = PeftModel.Wrap(TinyModels.Vit(), "coeff+dora");
        var resumed = new Trainer(resumedModel, Options).Fit(train, val, Path.Combine(dir, "b"), resume: true);
        Assert.Equal(28, resumed.Steps);
        var a = full.Model.state_dict();
        var b = resumedModel.Model.state_dict();
        foreach (var name in full.TrainableNames)
            Assert.True(MaxAbsDiff(a[name], b[name]) == 0.0, $"{name} differs by {MaxAbsDiff(a[name], b[name])}");
    }

    [Fact]
    public void A_cancellation_before_the_start_changes_nothing_and_one_at_the_last_step_lets_the_run_finish()
    {
        using var scope = NewDisposeScope();
        var peft = PeftModel.Wrap(TinyModels.Vit(), "coeff");
        Directory.CreateDirectory(Path.Combine(dir, Trainer.CheckpointFolder, "step-00000099"));
        Assert.Throws<OperationCanceledException>(() => new Trainer(peft, Options).Fit(Bands(32, 1), Bands(16, 2), dir, cancellation: new CancellationToken(true)));
        Assert.True(Directory.Exists(Path.Combine(dir, Trainer.CheckpointFolder, "step-00000099")), "a run cancelled before it starts leaves the folder alone");
        var stop = new StopAfter(2);
        var result = new Trainer(peft, Options with { MaxSteps = 2 }, stop).Fit(Bands(32, 1), Bands(16, 2), dir, cancellation: stop.Token);
        Assert.Equal(2, result.Steps);
        Assert.Single(result.History);
    }

    [Fact]
    public void A_nan_loss_stops_the_run_with_a_clear_message()
    {
        using var scope = NewDisposeScope();
        var peft = PeftModel.Wrap(TinyModels.Vit(), "coeff");
        // One image with a NaN pixel, placed where the first epoch's data order takes it in its fourth batch.
        var data = Bands(64, 1);
        int example = Trainer.Permutation(64, Options.Seed, 0)[3 * Options.BatchSize + 5];
        var images = data.Inputs.clone();
        images[example, 0, 4, 4] = float.NaN;
        var steps = new StopAfter(int.MaxValue);
        var e = Assert.Throws<TrainingDivergedException>(() =>
            new Trainer(peft, Options, steps).Fit(new TensorBatchSource(images, data.Labels), Bands(16, 2), dir));
        Assert.Contains("loss became NaN", e.Message);
        Assert.Contains("epoch 1, step 4", e.Message);
        // Three steps completed; the fourth, whose loss was NaN, never reached the optimiser.
        Assert.Equal(3, steps.LastStep);
    }

    [Fact]
    public void Learning_rate_warms_up_linearly_then_decays_by_cosine()
    {
        var o = new TrainOptions { WarmupFraction = 0.1 };
        Assert.Equal(0.1, o.Schedule(0, 100), 12);
        Assert.Equal(1.0, o.Schedule(9, 100), 12);
        Assert.Equal(1.0, o.Schedule(10, 100), 12);
        Assert.Equal(0.5, o.Schedule(55, 100), 12);           // halfway through the decay
        Assert.True(o.Schedule(99, 100) < 0.001);
    }
}

/// <summary>Resident memory is per process: measured with no other test running (see AssemblyInfo.cs).</summary>
public class MemoryTests
{
    [Fact]
    public void Resident_memory_stays_flat_over_a_long_run()
    {
        var dir = Path.Combine(Path.GetTempPath(), "coefftune-rss-" + Guid.NewGuid().ToString("N"));
        try { FlatOver300Steps(dir); }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    private static void FlatOver300Steps(string dir)
    {
        using var scope = NewDisposeScope();
        var peft = PeftModel.Wrap(TinyModels.Vit(), "coeff+lora");
        var probe = new RssProbe(30, 300);
        new Trainer(peft, TrainerTests.Options with { Epochs = 100, MaxSteps = 300, CheckpointEvery = 1000 }, probe).Fit(TrainerTests.Bands(64, 1), TrainerTests.Bands(16, 2), dir);
        Assert.True(probe.At[300] <= probe.At[30] * 1.10, $"RSS {probe.At[30] / 1e6:F0} MB after 30 steps, {probe.At[300] / 1e6:F0} MB after 300");
        // Resident memory is coarse (allocator pools, a 10% allowance); the count of live tensors is exact: a
        // step that leaks even one tensor grows it by 270 between the two probes.
        Assert.True(probe.Live[300] <= probe.Live[30], $"live tensors: {probe.Live[30]} after 30 steps, {probe.Live[300]} after 300");
    }

    private sealed class RssProbe(params int[] steps) : ITrainingObserver
    {
        public readonly Dictionary<int, long> At = new();
        public readonly Dictionary<int, long> Live = new();
        public void OnStep(int step, int epoch, double loss, double examplesPerSecond)
        {
            if (!steps.Contains(step)) return;
            GC.Collect();
            GC.WaitForPendingFinalizers();
            At[step] = System.Diagnostics.Process.GetCurrentProcess().WorkingSet64;
            Live[step] = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        }
    }
}
