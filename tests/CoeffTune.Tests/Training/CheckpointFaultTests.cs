using CoeffTune.Methods;
using CoeffTune.Training;
using TorchSharp;
using static TorchSharp.torch;
using static CoeffTune.Tests.TestUtil;

namespace CoeffTune.Tests.Training;

/// <summary>
/// Crash safety of checkpoints, made deterministic by the checkpoint writer's fault-injection point: the
/// write is stopped at every boundary in turn, and the resumed run must end exactly where an uninterrupted
/// run ends, or refuse with a message naming what is wrong.
/// </summary>
public sealed class CheckpointFaultTests : IDisposable
{
    private readonly TempDir temp = new();
    public void Dispose() => temp.Dispose();

    private sealed class Killed : Exception;

    // 100 examples in batches of 16: 7 steps an epoch, 14 in all; a checkpoint every 3 steps and at each epoch's
    // end: steps 3, 6, 7, 9, 12, 14.
    private static TrainOptions Options => TrainerTests.Options with { CheckpointEvery = 3, MaxSteps = 14 };
    // Made per test, outside the tests' dispose scopes.
    private readonly TensorBatchSource Train = TrainerTests.Bands(100, 3), Validation = TrainerTests.Bands(32, 4);

    private static Dictionary<string, (float[] Data, long[] Shape)>? uninterrupted;

    /// <summary>The weights of a run that nothing interrupts (computed once; every test compares with it).</summary>
    private Dictionary<string, Tensor> Uninterrupted(string dir)
    {
        if (uninterrupted is null)
        {
            var peft = PeftModel.Wrap(TinyModels.Vit(), "coeff+lora");
            new Trainer(peft, Options).Fit(Train, Validation, dir);
            uninterrupted = Weights(peft).ToDictionary(kv => kv.Key, kv => (kv.Value.data<float>().ToArray(), kv.Value.shape));
        }
        return uninterrupted.ToDictionary(kv => kv.Key, kv => tensor(kv.Value.Data).reshape(kv.Value.Shape));
    }

    private static Dictionary<string, Tensor> Weights(PeftModel peft)
    {
        var state = peft.Model.state_dict();
        return peft.TrainableNames.ToDictionary(n => n, n => state[n].detach().clone());
    }

    public static TheoryData<string> Boundaries => new()
    {
        "trainable.safetensors", "best.safetensors", "optimizer.bin", "state.json", CheckpointStore.ManifestName, "renamed", "pruned",
    };

    [Theory]
    [MemberData(nameof(Boundaries))]
    public void A_kill_at_any_boundary_of_a_checkpoint_write_resumes_bit_identically(string boundary)
    {
        using var scope = NewDisposeScope();
        var expected = Uninterrupted(Path.Combine(temp.Path, "whole"));
        var dir = Path.Combine(temp.Path, "killed");
        int writes = 0;
        var first = PeftModel.Wrap(TinyModels.Vit(), "coeff+lora");
        // The fourth checkpoint write (step 9) is killed: three complete ones exist, two kept.
        Assert.Throws<Killed>(() => new Trainer(first, Options)
        {
            CheckpointBoundary = b => { if (b == boundary && ++writes == 4) throw new Killed(); },
        }.Fit(Train, Validation, dir));

        var log = new StringWriter();
        var resumed = PeftModel.Wrap(TinyModels.Vit(), "coeff+lora");
        var result = new Trainer(resumed, Options) { Log = log }.Fit(Train, Validation, dir, resume: true);
        Assert.Equal(14, result.Steps);
        var actual = Weights(resumed);
        foreach (var (name, t) in expected)
            Assert.True(MaxAbsDiff(t, actual[name]) == 0.0, $"{name} differs by {MaxAbsDiff(t, actual[name])} after a kill at {boundary}");
        Assert.Empty(Directory.GetDirectories(Path.Combine(dir, Trainer.CheckpointFolder), ".tmp-*"));
        Assert.Equal(2, Directory.GetDirectories(Path.Combine(dir, Trainer.CheckpointFolder), "step-*").Length);
    }

    [Fact]
    public void A_damaged_newest_checkpoint_falls_back_to_the_previous_one_and_all_damaged_is_refused()
    {
        using var scope = NewDisposeScope();
        var expected = Uninterrupted(Path.Combine(temp.Path, "whole"));
        var dir = Path.Combine(temp.Path, "damaged");
        var first = PeftModel.Wrap(TinyModels.Vit(), "coeff+lora");
        Assert.Equal(10, TrainerTests.StopAfterSteps(first, Options, 10, Train, Validation, dir));
        var steps = Directory.GetDirectories(Path.Combine(dir, Trainer.CheckpointFolder), "step-*").Order().ToList();
        Assert.Equal(new[] { "step-00000007", "step-00000009" }, steps.Select(Path.GetFileName));
        Flip(Path.Combine(steps[1], "optimizer.bin"));

        var log = new StringWriter();
        var resumed = PeftModel.Wrap(TinyModels.Vit(), "coeff+lora");
        new Trainer(resumed, Options) { Log = log }.Fit(Train, Validation, dir, resume: true);
        Assert.Contains("step-00000009 is not usable: optimizer.bin does not match its SHA-256", log.ToString());
        Assert.Contains("previous complete checkpoint, step 7", log.ToString());
        var actual = Weights(resumed);
        foreach (var (name, t) in expected) Assert.True(MaxAbsDiff(t, actual[name]) == 0.0, $"{name} differs");

        // Every checkpoint damaged: refused, naming each.
        foreach (var step in Directory.GetDirectories(Path.Combine(dir, Trainer.CheckpointFolder), "step-*"))
            File.Delete(Path.Combine(step, CheckpointStore.ManifestName));
        var e = Assert.Throws<InvalidDataException>(() =>
            new Trainer(PeftModel.Wrap(TinyModels.Vit(), "coeff+lora"), Options).Fit(Train, Validation, dir, resume: true));
        Assert.Contains("no complete checkpoint", e.Message);
        Assert.Contains("no manifest.json", e.Message);
    }

    [Fact]
    public void Resuming_with_a_changed_setting_is_refused_naming_it_unless_allowed()
    {
        using var scope = NewDisposeScope();
        var dir = Path.Combine(temp.Path, "changed");
        Assert.Equal(5, TrainerTests.StopAfterSteps(PeftModel.Wrap(TinyModels.Vit(), "coeff+lora"), Options, 5, Train, Validation, dir));
        var e = Assert.Throws<InvalidDataException>(() =>
            new Trainer(PeftModel.Wrap(TinyModels.Vit(), "coeff+lora"), Options with { LearningRate = 0.01, BatchSize = 8 })
                .Fit(Train, Validation, dir, resume: true));
        Assert.Contains("batch_size 16 -> 8", e.Message);
        Assert.Contains("lr 0.003 -> 0.01", e.Message);
        var log = new StringWriter();
        var result = new Trainer(PeftModel.Wrap(TinyModels.Vit(), "coeff+lora"), Options with { LearningRate = 0.01 })
        {
            AllowSettingChanges = true, Log = log,
        }.Fit(Train, Validation, dir, resume: true);
        Assert.Equal(14, result.Steps);
        Assert.Contains("resuming with a changed setting: lr 0.003 -> 0.01", log.ToString());
    }

    [Fact]
    public void A_full_disk_during_a_checkpoint_frees_its_space_and_keeps_the_previous_checkpoint()
    {
        using var scope = NewDisposeScope();
        var dir = Path.Combine(temp.Path, "full");
        int writes = 0;
        // The third write fails as a full disk does: after trainable.safetensors, before the rest.
        var e = Assert.Throws<IOException>(() => new Trainer(PeftModel.Wrap(TinyModels.Vit(), "coeff+lora"), Options)
        {
            CheckpointBoundary = b => { if (b == "trainable.safetensors" && ++writes == 3) throw new IOException("No space left on device"); },
        }.Fit(Train, Validation, dir));
        Assert.Contains("No space left", e.Message);
        var checkpoints = Path.Combine(dir, Trainer.CheckpointFolder);
        Assert.Empty(Directory.GetDirectories(checkpoints, ".tmp-*"));       // the partial write's space is freed at once
        Assert.Equal(new[] { "step-00000003", "step-00000006" }, Directory.GetDirectories(checkpoints, "step-*").Select(Path.GetFileName).Order());
        var resumed = new Trainer(PeftModel.Wrap(TinyModels.Vit(), "coeff+lora"), Options).Fit(Train, Validation, dir, resume: true);
        Assert.Equal(14, resumed.Steps);
    }

    [Fact]
    public void A_run_folder_in_use_is_refused_and_leftovers_are_cleaned_on_the_next_start()
    {
        var dir = Path.Combine(temp.Path, "locked");
        using (var held = RunFolder.Acquire(dir))
        {
            var e = Assert.Throws<IOException>(() => RunFolder.Acquire(dir));
            Assert.Contains("in use by another coefftune run", e.Message);
            File.WriteAllText(Path.Combine(dir, ".split.json.123.abc.tmp"), "half");
            Directory.CreateDirectory(Path.Combine(dir, "checkpoint", ".tmp-step-00000003-abc"));
        }
        var log = new StringWriter();
        using (RunFolder.Acquire(dir, log)) { }
        Assert.Contains("removed 2 temporary file(s)", log.ToString());
        Assert.Empty(Directory.GetFiles(dir, "*.tmp", SearchOption.AllDirectories));
    }

    private static void Flip(string path)
    {
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(path, bytes);
    }
}
