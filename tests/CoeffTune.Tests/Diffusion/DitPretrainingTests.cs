using CoeffTune.Assets;
using CoeffTune.Diffusion;
using CoeffTune.Models.Dit;
using CoeffTune.Tests.Checkpoints;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Diffusion;

/// <summary>The pretraining of dit-fmnist, run for a few steps on a few hundred captioned images with the real MiniLM.</summary>
[Collection(RealModelsCollection.Name)]
public sealed class DitPretrainingTests(RealModelsFixture models, ITestOutputHelper output)
{
    [SkippableFact]
    public void Quick_pretraining_writes_a_model_that_loads_back_and_lowers_the_noise_error()
    {
        models.RequireAsset("minilm");
        using var tmp = new TempDir();
        using var encoder = CaptionEncoder.MiniLM(AssetCache.Default);
        var (train, validation) = CaptionedCorpus.Load(encoder, AssetCache.Default, trainImages: 640, validationImages: 64);
        using (train) using (validation)
        {
            Assert.Equal(640, train.Count);
            // Held-out classes never appear in a caption.
            Assert.DoesNotContain(train.Captions, c => c.Contains("bag") || c.Contains("ankle boot") || c.Contains("eight") || c.Contains("nine"));
            Assert.Contains(train.Captions, c => c.StartsWith("a rotated photo of "));
            Assert.Contains(train.Captions, c => c.StartsWith("an inverted image of the digit "));
            Assert.True(encoder.CachedCaptions <= train.Captions.Count + validation.Captions.Count);

            var options = new DitPretrainOptions { Steps = 10, BatchSize = 64, LearningRate = 2e-3, TrainImages = 640, ValidationImages = 64 };
            Assert.Equal("dit-fmnist-10", options.CacheName);
            var info = DitPretraining.Train(options, train, validation, tmp.Path, CaptionEncoder.DefaultModel, new StringWriter());
            output.WriteLine($"Small28, 10 steps of 64: {info.Seconds:F1} s ({info.Seconds / 10:F2} s a step with the evaluation), train loss {info.TrainLoss:F4}, validation MSE {info.ValidationLoss:F4}");
            Assert.Equal(10, info.Steps);
            Assert.True(info.ValidationLoss < 0.9, $"validation noise MSE {info.ValidationLoss}");
            Assert.False(Directory.Exists(Path.Combine(tmp.Path, "run")));

            var read = DitPretraining.Read(tmp.Path)!;
            Assert.Equal(info.ValidationLoss, read.ValidationLoss);
            Assert.Equal(DitConfig.Small28(), read.Config);
            using var loaded = DitPretraining.Load(read);
            var objective = new DiffusionObjective(NoiseSchedule.Create(read.Schedule, read.Timesteps));
            Assert.Equal(info.ValidationLoss, objective.Evaluate(loaded, validation, 64, CPU).Loss, 5);
        }
    }

    [Fact]
    public void A_second_pretraining_of_the_same_model_is_refused_naming_the_folder()
    {
        using var tmp = new TempDir();
        var cache = new AssetCache(tmp.Path);
        var o = new DitPretrainOptions { Steps = 7 };
        using var held = CoeffTune.Training.RunFolder.Acquire(Path.Combine(cache.PathFor(o.CacheName), "run"));
        var e = Assert.Throws<IOException>(() => DitPretraining.Ensure(o, cache));
        Assert.Contains(Path.Combine(cache.PathFor("dit-fmnist-7"), "run"), e.Message);
        Assert.Contains("in use by another coefftune run", e.Message);
    }

    [Fact]
    public void Cache_names_say_the_budget()
    {
        Assert.Equal("dit-fmnist", new DitPretrainOptions().CacheName);
        Assert.Equal("dit-fmnist-300", new DitPretrainOptions { Steps = 300 }.CacheName);
        Assert.Equal(300, DitPretrainOptions.FromCacheName("dit-fmnist-300")!.Steps);
        Assert.Equal(DitPretrainOptions.DefaultSteps, DitPretrainOptions.FromCacheName("dit-fmnist")!.Steps);
        Assert.Null(DitPretrainOptions.FromCacheName("vit-fmnist"));
    }
}
