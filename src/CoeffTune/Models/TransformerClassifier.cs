using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoeffTune.Models;

/// <summary>
/// What every model offers the rest of the library: logits for a batch, pooled features, and which
/// submodule is the classification head. Models know nothing of fine-tuning methods.
/// </summary>
public abstract class TransformerClassifier : nn.Module
{
    protected TransformerClassifier(string name) : base(name) { }

    /// <summary>The state-dict prefix of the classification head (always trainable).</summary>
    public abstract string HeadName { get; }

    /// <summary>The classification head.</summary>
    public abstract Linear Head { get; }

    /// <summary>Short architecture tag, e.g. "bert" or "vit".</summary>
    public abstract string Architecture { get; }

    /// <summary>Pooled features (B, D) fed to the head.</summary>
    public abstract Tensor Features(Batch batch);

    /// <summary>The length of the token sequence the attention layers see for <paramref name="batch"/> (text tokens, or patches plus [CLS]).</summary>
    public abstract long SequenceLength(Batch batch);

    /// <summary>How <see cref="Features"/> pools token states into one vector ("cls", "mean", ...), recorded in adapters.</summary>
    public virtual string PoolingName => "cls";

    /// <summary>Class logits (B, classes).</summary>
    public Tensor forward(Batch batch)
    {
        using var scope = NewDisposeScope();
        return Head.call(Features(batch)).MoveToOuterDisposeScope();
    }

    /// <summary>Number of parameters of the model without any adapter.</summary>
    public long BaseParameterCount { get; protected set; }
}
